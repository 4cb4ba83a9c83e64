using Microsoft.Extensions.Logging;
using Swap.BlockDevices;
using Swap.Common.Buffers;
using Swap.Common.Status;
using Swap.Nbd.Server;
using Swap.Nbd.Server.Hosting;
using System.Net;
using Swap.Server.Metrics;
using Swap.Server.Portal;
using Swap.Server.Status;
using Swap.Slabs.Mapping;

namespace Swap.Server;

/// <summary>
/// swapnbd-server as an embeddable host: the device the options ask for (memory, or slabs over donor daemons and a
/// backup disk), the NBD server over it and the status file. The executable starts one from configuration; tests
/// can start one from a typed <see cref="ServerOptions"/>.
/// </summary>
public sealed class SwapServerHost : IAsyncDisposable
{
    private const int PreallocatedLargest = 1 << 20;
    private const long PreallocatedBytesPerClass = 2L << 20;

    /// <summary>
    /// Pipe blocks (256 KiB each, 6 MiB) made at start: a connection holds two or three for its input and one for its
    /// replies, so this serves six connections (swap-attach.sh makes two, and a persistent client's reconnect briefly
    /// adds its new ones to the old) without making a block while the host may be short of memory.
    /// </summary>
    private const int PreallocatedPipeBlocks = 24;

    private readonly ServerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private StatusFileWriter<ServerStatus>? _status;
    private MetricsExporter? _metrics;
    private readonly PortalWatcher? _portal;
    private int _stopped;

    /// <summary>
    /// Builds the device (throws <see cref="Slabs.Placement.PortalListException"/> or
    /// <see cref="Slabs.Backup.BackupDiskException"/> when slab mode cannot start) and the server; nothing listens
    /// until <see cref="Start"/>.
    /// </summary>
    public SwapServerHost(ServerOptions options, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors), nameof(options));
        }

        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = loggerFactory.CreateLogger("Swap.Nbd.Server");
        if (options.Backend == "slabs")
        {
            var source = PortalSources.Create(PortalAddress.Parse(options.Portal!), options.DnsServer);
            var (daemons, ttl, problem) = FirstReading(source);
            var device = (SwapDevice)ExportDevice.Create(options, loggerFactory, _time, daemons);
            Device = device;
            _portal = new PortalWatcher(source, device, daemons.Select(d => d.Name), options.PortalRefresh, _time, _logger, problem, ttl);
        }
        else
        {
            Device = ExportDevice.Create(options, loggerFactory, _time);
        }

        try
        {
            Server = new NbdServer(options.Nbd, Device, loggerFactory, _time);
        }
        catch
        {
            Device.Dispose();
            throw;
        }
    }

    /// <summary>Re-reads the portal (slab mode) and applies what changed; the executable calls it on SIGHUP.</summary>
    public void ReloadPortal() => _portal?.Reload();

    /// <summary>The portal's reader in slab mode (null otherwise).</summary>
    public PortalWatcher? Portal => _portal;

    /// <summary>
    /// The daemons to start with. A portal.list with an error refuses the start (<see cref="Slabs.Placement.PortalListException"/>);
    /// a DNS name that does not answer yet starts the device with no donor (every page on the backup disk) and is tried again.
    /// </summary>
    private (IReadOnlyList<(string Name, EndPoint EndPoint)> Daemons, TimeSpan? Ttl, string? Problem) FirstReading(IPortalSource source)
    {
        if (source is FilePortalSource file)
        {
            return (file.Load(), null, null);
        }

        try
        {
            var resolution = source.ResolveAsync(CancellationToken.None).GetAwaiter().GetResult();
            return (resolution.Daemons, resolution.Ttl, null);
        }
        catch (PortalResolveException ex)
        {
            PortalLog.KeptLastGood(_logger, source.Name, ex.Message, 0, PortalWatcher.MinimumDnsInterval);
            return ([], null, ex.Message);
        }
    }

    public IBlockDevice Device { get; }

    public NbdServer Server { get; }

    /// <summary>
    /// Pre-allocates the request buffers, binds every listener and starts serving and writing the status file;
    /// throws if an address cannot be bound.
    /// </summary>
    public void Start()
    {
        // Buffers for a full kernel queue (128 requests) of 4-16 KiB and fewer larger ones, allocated and touched (so
        // locked) now rather than during the first swap storm. 2 MiB per size class up to 1 MiB: 18 MiB.
        Server.Buffers.PreallocateClasses(PreallocatedLargest, PreallocatedBytesPerClass);
        // With memory locked the request buffers are all there will be: a request waits for one to come back rather
        // than make new pages, which on a host swapping to this server could wait on the requests in flight.
        Server.Buffers.Fixed = _options.LockMemory;
        // The pipes' blocks, 6 MiB.
        Server.PipeBlocks.Preallocate(PreallocatedPipeBlocks);
        if (Device is SwapDevice)
        {
            PinnedBufferPool.Shared.Preallocate(SwapDevice.CopyChunkSize, _options.Slabs.ParallelFills);
            if (_options.Slabs.SealPages)
            {
                // Sealed pages of one request (4 KiB to 1 MiB + 4 KiB; 1 MiB a class), and each fill's sealed chunk: 13 MiB.
                PinnedBufferPool.Shared.PreallocateClasses(SwapDevice.CopyChunkSize, SwapDevice.CopyChunkSize);
                PinnedBufferPool.Shared.Preallocate(SwapDevice.CopyChunkSize * 2, _options.Slabs.ParallelFills);
            }
        }

        Server.Start();
        _portal?.Start();
        ServerLog.Export(_logger, Server.Export.Name, Device.Size, _options.Backend, Server.Export.FlagsFor(false).ToString());
        if (_options.MetricsListen is { } metricsListen)
        {
            _metrics = new MetricsExporter(metricsListen, NbdMetrics.MeterName, SlabMetrics.MeterName);
            ServerLog.Metrics(_logger, _metrics.Url);
        }

        if (_options.StatusFile is { } statusFile)
        {
            _status = new StatusFileWriter<ServerStatus>(statusFile, CaptureStatus, StatusJsonContext.Default.ServerStatus, "serving", _time, _logger);
            _status.Start();
        }
    }

    /// <summary>Status file rewrites begun so far (0 without one).</summary>
    internal int StatusWrites => _status?.Writes ?? 0;

    /// <summary>Where the export's pages are now, as the status file reports it.</summary>
    public ServerStatus CaptureStatus(string state) =>
        ServerStatus.Capture(Device, Server.Export.Name, _options.BackupDisk, Server.ConnectionCount, state, _time.GetUtcNow());

    /// <summary>Stops the server gracefully (<see cref="NbdServer.StopAsync"/>), then leaves the status file "stopped".</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        if (_portal is not null)
        {
            await _portal.DisposeAsync().ConfigureAwait(false);
        }

        await Server.StopAsync().ConfigureAwait(false);
        _metrics?.Dispose();
        if (_status is not null)
        {
            await _status.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        Device.Dispose();
    }
}
