using Microsoft.Extensions.Logging;
using Swap.Slabs.Backup;
using Swap.Common.Hosting;
using Swap.Common.Security;
using Swap.Server.Status;
using Swap.Slabs.Placement;

namespace Swap.Server;

/// <summary>The swapnbd-server executable: configuration in, server run until SIGTERM/SIGINT, exit code out.</summary>
public static class ServerCommand
{
    public const int ExitOk = ConsoleProgram.ExitOk;
    public const int ExitConfig = ConsoleProgram.ExitConfig;
    public const int ExitStartFailed = ConsoleProgram.ExitStartFailed;

    /// <summary>
    /// Thread-pool workers with memory locked, made at start and never more: slab fills and placement, hedged disk
    /// reads, timers. A worker made during a swap storm waited in reclaim holding up the process (ThreadPoolWarmup).
    /// </summary>
    private const int PoolWorkers = 16;

    public static async Task<int> RunAsync(string[] args)
    {
        // Before anything else starts threads: the flag is per thread and inherited by the threads started after it.
        if (args.Length > 0 && args[0] == "status")
        {
            return await StatusView.Command.RunConsoleAsync(args[1..]).ConfigureAwait(false);
        }

        var ioFlusher = ProcessGuard.SetIoFlusher();
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(ServerSettings.Usage);
            return ExitOk;
        }

        var errors = new List<string>();
        var options = ServerSettings.Load(args, errors, out var logLevel);
        if (ConsoleProgram.ReportConfigErrors("swapnbd-server", errors))
        {
            return ExitConfig;
        }

        // Before the device and the server exist, so every mapping they make is locked as it is touched, and every
        // thread they start inherits the policy.
        var guard = ProcessGuard.Apply(options.LockMemory, populate: true, ProcessGuard.OomScoreAdjMinimum, ioFlusher) with
        {
            RealtimePriority = options.RealtimePriority,
            RealtimeErrno = options.RealtimePriority > 0 ? ProcessGuard.SetRoundRobin(options.RealtimePriority) : 0,
        };
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(logLevel)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            }));
        ProcessGuardLog.Report(loggerFactory.CreateLogger("Swap.Nbd.Server"), guard);
        SwapServerHost host;
        try
        {
            host = new SwapServerHost(options, loggerFactory);
        }
        catch (PortalListException ex)
        {
            Console.Error.WriteLine($"swapnbd-server: configuration error: Portal: {ex.Message}");
            return ExitConfig;
        }
        catch (BackupDiskException ex)
        {
            Console.Error.WriteLine($"swapnbd-server: configuration error: BackupDisk: {ex.Message}");
            return ExitConfig;
        }
        catch (ClusterKeyException ex)
        {
            // The file changed between the check and the load.
            Console.Error.WriteLine($"swapnbd-server: configuration error: AuthKeyFile: --auth-key-file {ex.Message}");
            return ExitConfig;
        }

        await using var hostLifetime = host;
        try
        {
            host.Start();
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"swapnbd-server: cannot listen: {ex.Message}");
            return ExitStartFailed;
        }

        if (options.LockMemory)
        {
            // The pool's workers made now, while memory is plenty, and no more later (ThreadPoolWarmup).
            ThreadPoolWarmup.StartFixed(PoolWorkers, TimeSpan.FromSeconds(5));
        }

        // SIGHUP re-reads the portal (a portal.list edited in place, or DNS asked now) instead of ending the process,
        // also when the server was started with SIGHUP ignored (nohup): HangupSignal puts the disposition back first.
        using var reload = HangupSignal.Register(context =>
        {
            context.Cancel = true;
            host.ReloadPortal();
        });

        // Every listener is bound and accepting: a client that connects now gets its handshake answered, so a
        // Type=notify unit (deploy/systemd) starts swapnbd-swap.service only now, without polling for the socket.
        var notifier = new SystemdNotifier(loggerFactory.CreateLogger("Swap.Nbd.Server"));
        using var stop = ConsoleProgram.ListenForStop();
        notifier.Ready($"serving export '{host.Server.Export.Name}' ({host.Device.Size} bytes) on {string.Join(", ", host.Server.EndPoints)}");
        await stop.Received.ConfigureAwait(false);
        notifier.Stopping("stopping: answering the requests in flight");
        await host.StopAsync().ConfigureAwait(false);
        return ExitOk;
    }
}
