using System.Net;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Client;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Faults;
using Swap.Slabs.Backup;
using Swap.Donor;
using Swap.Common.Status;
using Swap.Server.Status;
using Swap.Slabs.Mapping;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Support;

/// <summary>The whole system in one test: donor daemons (in-process or processes), a backup file, a SwapDevice and an NBD server on loopback.</summary>
internal sealed class SlabCluster : IAsyncDisposable
{
    private SlabCluster(TestDaemon[] daemons, string directory, FaultyBackupStore disk, SwapDevice device, NbdServer server, RecordingLoggerProvider log)
    {
        Daemons = daemons;
        Directory = directory;
        Disk = disk;
        Device = device;
        Server = server;
        Log = log;
    }

    public TestDaemon[] Daemons { get; }
    public string Directory { get; }
    /// <summary>The backup disk, under a fault layer a test can switch on.</summary>
    public FaultyBackupStore Disk { get; }
    public SwapDevice Device { get; }
    public NbdServer Server { get; }
    public RecordingLoggerProvider Log { get; }

    private StatusFileWriter<ServerStatus>? _status;
    private bool _ownsDaemons;

    public NbdUri Uri => NbdUri.Parse($"nbd://127.0.0.1:{((IPEndPoint)Server.EndPoints.First(e => e is IPEndPoint)).Port}");

    /// <summary>Timeouts short enough that a failure is handled within a second; the run's cluster key.</summary>
    public static SwapDeviceOptions FastOptions(long slabSize) => new()
    {
        SlabSize = slabSize,
        Seed = 7,
        PlacementRetryDelay = TimeSpan.FromMilliseconds(100),
        PlacementRetryMaxDelay = TimeSpan.FromSeconds(1),
        Links = new DaemonLinkSettings
        {
            AuthKey = TestKeys.Cluster,
            RequestTimeout = TimeSpan.FromMilliseconds(500),
            ConnectTimeout = TimeSpan.FromMilliseconds(500),
            HeartbeatInterval = TimeSpan.FromMilliseconds(200),
            ReconnectDelay = TimeSpan.FromMilliseconds(50),
            ReconnectMaxDelay = TimeSpan.FromMilliseconds(500),
            BreakDuration = TimeSpan.FromMilliseconds(500),
        },
    };

    /// <param name="sharedDaemons">Serve from these daemons (another cluster's, left running at dispose) instead of starting <paramref name="daemons"/> new ones.</param>
    /// <param name="sealPages">SwapDeviceOptions.SealPages: false only to show what an unsealed server leaves on its donors.</param>
    /// <param name="configureDevice">Changes the device's options (after <see cref="FastOptions"/> and <paramref name="sealPages"/>).</param>
    public static async Task<SlabCluster> StartAsync(int daemons, long size, long slabSize = 1L << 20, bool processes = false,
        Action<DonorOptions>? configureDonor = null, IReadOnlyList<(string, EndPoint)>? extraDaemons = null, string? statusFile = null,
        TestDaemon[]? sharedDaemons = null, bool sealPages = true, Func<SwapDeviceOptions, SwapDeviceOptions>? configureDevice = null)
    {
        var started = sharedDaemons ?? new TestDaemon[daemons];
        daemons = started.Length;
        for (var i = 0; sharedDaemons is null && i < daemons; i++)
        {
            started[i] = await TestDaemon.StartAsync(processes, configureDonor);
        }

        var directory = Path.Combine(Path.GetTempPath(), "swapnbd-slabs-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        var disk = new FaultyBackupStore(BackupDisk.Open(Path.Combine(directory, "backup.img"), size));
        var log = new RecordingLoggerProvider();
        var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log).SetMinimumLevel(LogLevel.Information));
        var endpoints = started.Select(d => (d.Name, (EndPoint)new IPEndPoint(IPAddress.Loopback, d.Port))).Concat(extraDaemons ?? []).ToList();
        var options = FastOptions(slabSize) with { SealPages = sealPages };
        var device = new SwapDevice(size, disk, endpoints, configureDevice?.Invoke(options) ?? options, loggerFactory: loggerFactory);
        device.Start();
        var serverOptions = new NbdServerOptions { Listen = "127.0.0.1:0", ShutdownTimeout = TimeSpan.FromSeconds(2) };
        var server = new NbdServer(serverOptions, device, loggerFactory);
        server.Start();
        var cluster = new SlabCluster(started, directory, disk, device, server, log) { _ownsDaemons = sharedDaemons is null };
        if (statusFile is not null)
        {
            cluster._status = new StatusFileWriter<ServerStatus>(statusFile, state => ServerStatus.Capture(device, server.Export.Name, disk.Path, server.ConnectionCount, state, TimeProvider.System.GetUtcNow()),
                StatusJsonContext.Default.ServerStatus, "serving", TimeProvider.System, loggerFactory.CreateLogger("status"));
            cluster._status.Start();
        }

        // Placement happens on first write: a daemon still connecting then would get no slab at all.
        await cluster.WaitForAsync(s => s.Daemons.Take(daemons).All(d => d.Up), "every daemon joined", CancellationToken.None);
        return cluster;
    }

    /// <summary>Polls the device's stats until <paramref name="condition"/> holds (fails the test after 30 s).</summary>
    public async Task WaitForAsync(Func<SwapDeviceStats, bool> condition, string what, CancellationToken ct)
    {
        for (var i = 0; i < 600; i++)
        {
            if (condition(Device.GetStats()))
            {
                return;
            }

            await Task.Delay(50, ct);
        }

        throw new TimeoutException($"not reached within 30 s: {what}; stats: {Device.GetStats()}");
    }

    /// <summary>Every slab holding data is placed on a live daemon and filled.</summary>
    public Task WaitSettledAsync(CancellationToken ct) =>
        WaitForAsync(s => s.ActiveSlabs == s.MappedSlabs && s.MappedSlabs == Device.SlabsWithData(), "every slab with data active on a daemon", ct);

    /// <summary>The first daemon that holds slabs right now.</summary>
    public async Task<int> VictimAsync(CancellationToken ct)
    {
        await WaitForAsync(s => s.Daemons.Any(d => d.Slabs > 0), "a daemon holds slabs", ct);
        return Device.GetStats().Daemons.ToList().FindIndex(d => d.Slabs > 0);
    }

    /// <summary>Stops the NBD server gracefully, then the status file (if any), which is left saying "stopped".</summary>
    public async Task StopServerAsync()
    {
        await Server.StopAsync();
        if (_status is not null)
        {
            await _status.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopServerAsync();
        await Device.StopAsync();
        foreach (var daemon in _ownsDaemons ? Daemons : [])
        {
            await daemon.DisposeAsync();
        }

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
