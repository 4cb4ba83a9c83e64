using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Server.Configuration;
using Swap.Slabs.Backup;
using Swap.Slabs.Devices;
using Swap.Slabs.Placement;

namespace Swap.Nbd.Server.Hosting;

/// <summary>The swapnbd-server executable: configuration in, server run until SIGTERM/SIGINT, exit code out.</summary>
public static class ServerCommand
{
    public const int ExitOk = 0;
    public const int ExitConfig = 2;
    public const int ExitStartFailed = 3;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(ServerSettings.Usage);
            return ExitOk;
        }

        var errors = new List<string>();
        var options = ServerSettings.Load(args, errors, out var logLevel);
        if (errors.Count > 0)
        {
            foreach (var error in errors)
            {
                Console.Error.WriteLine($"swapnbd-server: configuration error: {error}");
            }

            Console.Error.WriteLine("swapnbd-server: see --help");
            return ExitConfig;
        }

        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(logLevel)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            }));
        IBlockDevice device;
        try
        {
            device = ExportDevice.Create(options, loggerFactory);
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

        using var deviceLifetime = device;
        await using var server = new NbdServer(options, device, loggerFactory);
        try
        {
            server.Start();
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"swapnbd-server: cannot listen: {ex.Message}");
            return ExitStartFailed;
        }

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        await stop.Task.ConfigureAwait(false);
        await server.StopAsync().ConfigureAwait(false);
        return ExitOk;

        void Handle(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.TrySetResult();
        }
    }
}
