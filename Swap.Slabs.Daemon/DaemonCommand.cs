using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Swap.Slabs.Donor;

namespace Swap.Slabs.Daemon;

/// <summary>The swapnbd-daemon executable: configuration in, daemon run until SIGTERM/SIGINT, exit code out.</summary>
public static class DaemonCommand
{
    public const int ExitOk = 0;
    public const int ExitConfig = 2;
    public const int ExitStartFailed = 3;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(DaemonSettings.Usage);
            return ExitOk;
        }

        var errors = new List<string>();
        var options = DaemonSettings.Load(args, errors, out var logLevel);
        if (errors.Count > 0)
        {
            foreach (var error in errors)
            {
                Console.Error.WriteLine($"swapnbd-daemon: configuration error: {error}");
            }

            Console.Error.WriteLine("swapnbd-daemon: see --help");
            return ExitConfig;
        }

        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(logLevel)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            }));
        DonorDaemon daemon;
        try
        {
            daemon = new DonorDaemon(options, loggerFactory);
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

            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
            await stop.Task.ConfigureAwait(false);
            await daemon.StopAsync().ConfigureAwait(false);
            return ExitOk;

            void Handle(PosixSignalContext context)
            {
                context.Cancel = true;
                stop.TrySetResult();
            }
        }
    }
}
