using System.Net;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Client;
using Swap.Server;
using Swap.Slabs.Mapping;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// swapnbd-server in-process in slab mode over a portal (a portal.list path, dns://… or dns+srv://…): the real host,
/// its portal reader and a backup file in a temp directory, the export on 127.0.0.1, every log line recorded.
/// </summary>
internal sealed class PortalHost : IAsyncDisposable
{
    private PortalHost(SwapServerHost host, RecordingLoggerProvider log, ILoggerFactory loggerFactory, string directory)
    {
        Host = host;
        Log = log;
        _loggerFactory = loggerFactory;
        Directory = directory;
    }

    private readonly ILoggerFactory _loggerFactory;

    public SwapServerHost Host { get; }

    public SwapDevice Device => (SwapDevice)Host.Device;

    public RecordingLoggerProvider Log { get; }

    public string Directory { get; }

    public NbdUri Uri => NbdUri.Parse($"nbd://127.0.0.1:{((IPEndPoint)Host.Server.EndPoints.First(e => e is IPEndPoint)).Port}");

    public static PortalHost Start(string portal, long size, string? dnsServer = null, TimeSpan? refresh = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "swapnbd-portal-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        var log = new RecordingLoggerProvider();
        var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log).SetMinimumLevel(LogLevel.Information));
        var options = new ServerOptions
        {
            Nbd = { Listen = "127.0.0.1:0", ShutdownTimeout = TimeSpan.FromSeconds(2) },
            Backend = "slabs",
            Portal = portal,
            DnsServer = dnsServer,
            PortalRefresh = refresh ?? TimeSpan.FromSeconds(30),
            BackupDisk = Path.Combine(directory, "backup.img"),
            AuthKeyFile = TestKeys.File,
            Size = size,
            Slabs = SlabCluster.FastOptions(1L << 20),
            LockMemory = false,
        };
        var host = new SwapServerHost(options, loggerFactory);
        host.Start();
        return new PortalHost(host, log, loggerFactory, directory);
    }

    /// <summary>The daemons' names and states now.</summary>
    public IReadOnlyList<DaemonUsage> Daemons => Device.GetStats().Daemons;

    /// <summary>Polls the device's stats until <paramref name="condition"/> holds (fails the test after <paramref name="seconds"/>).</summary>
    public async Task WaitForAsync(Func<SwapDeviceStats, bool> condition, string what, CancellationToken ct, int seconds = 30)
    {
        for (var i = 0; i < seconds * 20; i++)
        {
            if (condition(Device.GetStats()))
            {
                return;
            }

            await Task.Delay(50, ct);
        }

        throw new TimeoutException($"not reached within {seconds} s: {what}; stats: {string.Join(", ", Daemons)}; log:\n{string.Join('\n', Log.Entries.Select(e => e.Message))}");
    }

    /// <summary>Every slab holding data is placed on a live daemon and filled.</summary>
    public Task WaitSettledAsync(CancellationToken ct) =>
        WaitForAsync(s => s.ActiveSlabs == s.MappedSlabs && s.MappedSlabs == Device.SlabsWithData(), "every slab with data active on a daemon", ct);

    /// <summary>Log lines with the event id so far.</summary>
    public int Count(int eventId) => Log.Entries.Count(e => e.EventId.Id == eventId);

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        _loggerFactory.Dispose();
        Log.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
