using Microsoft.Extensions.Logging;
using Swap.Common.Hosting;
using Swap.Common.Security;
using Swap.Donor.Status;

namespace Swap.Donor.Hosting;

/// <summary>The swapnbd-daemon executable: configuration in, daemon run until SIGTERM/SIGINT, exit code out.</summary>
public static class DaemonCommand
{
    public const int ExitOk = ConsoleProgram.ExitOk;
    public const int ExitConfig = ConsoleProgram.ExitConfig;
    public const int ExitStartFailed = ConsoleProgram.ExitStartFailed;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args is ["keygen", ..])
        {
            return KeygenCommand.Run(args[1..]);
        }

        if (args is ["status", ..])
        {
            return await DonorStatusView.Command.RunConsoleAsync(args[1..]).ConfigureAwait(false);
        }

        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(DaemonSettings.Usage);
            return ExitOk;
        }

        var errors = new List<string>();
        var options = DaemonSettings.Load(args, errors, out var logLevel);
        if (ConsoleProgram.ReportConfigErrors("swapnbd-daemon", errors))
        {
            return ExitConfig;
        }

        // Lent memory is locked as it is written. No IO_FLUSHER, no oom_score_adj and no reading in of the whole image:
        // the daemon is not on its own host's swap path, and on a donor short of memory lent memory is what the OOM
        // killer should take back first (servers fall back to their backup disk).
        var guard = ProcessGuard.Apply(options.LockMemory, populate: false, oomScoreAdj: null);
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(logLevel)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            }));
        ProcessGuardLog.Report(loggerFactory.CreateLogger("Swap.Slabs.Donor"), guard);
        DonorDaemon daemon;
        try
        {
            daemon = new DonorDaemon(options, loggerFactory);
        }
        catch (ClusterKeyException ex)
        {
            // The file changed between the check and the load.
            Console.Error.WriteLine($"swapnbd-daemon: configuration error: AuthKeyFile: --auth-key-file {ex.Message}");
            return ExitConfig;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"swapnbd-daemon: cannot read /proc/meminfo: {ex.Message}");
            return ExitStartFailed;
        }

        await using (daemon.ConfigureAwait(false))
        {
            try
            {
                daemon.Start();
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or InvalidDataException)
            {
                Console.Error.WriteLine($"swapnbd-daemon: cannot start: {ex.Message}");
                return ExitStartFailed;
            }

            using var metrics = options.MetricsListen is { } metricsListen ? new DaemonMetricsExporter(metricsListen) : null;
            if (metrics is not null)
            {
                DonorLog.Metrics(loggerFactory.CreateLogger("Swap.Slabs.Donor"), metrics.Url);
            }

            var notifier = new SystemdNotifier(loggerFactory.CreateLogger("Swap.Slabs.Donor"));
            using var stop = ConsoleProgram.ListenForStop();
            notifier.Ready($"lending up to {options.MaxMemory} bytes on {string.Join(", ", daemon.EndPoints)}");
            await stop.Received.ConfigureAwait(false);
            notifier.Stopping("stopping: closing server connections");
            await daemon.StopAsync().ConfigureAwait(false);
            return ExitOk;
        }
    }
}
