using Microsoft.Extensions.Logging;
using Swap.Nbd.Server.Configuration;
using Swap.Slabs.Backup;
using Swap.Slabs.Devices;
using Swap.Slabs.Hosting;
using Swap.Slabs.Placement;

namespace Swap.Nbd.Server.Hosting;

/// <summary>The swapnbd-server executable: configuration in, server run until SIGTERM/SIGINT, exit code out.</summary>
public static class ServerCommand
{
    public const int ExitOk = ConsoleProgram.ExitOk;
    public const int ExitConfig = ConsoleProgram.ExitConfig;
    public const int ExitStartFailed = ConsoleProgram.ExitStartFailed;

    public static async Task<int> RunAsync(string[] args)
    {
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

        using var stop = ConsoleProgram.ListenForStop();
        await stop.Received.ConfigureAwait(false);
        await server.StopAsync().ConfigureAwait(false);
        return ExitOk;
    }
}
