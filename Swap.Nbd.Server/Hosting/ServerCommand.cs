using Microsoft.Extensions.Logging;
using Swap.Nbd.Server.Configuration;
using Swap.Slabs.Backup;
using Swap.Slabs.Buffers;
using Swap.Slabs.Devices;
using Swap.Slabs.Hosting;
using Swap.Slabs.Mapping;
using Swap.Slabs.Placement;

namespace Swap.Nbd.Server.Hosting;

/// <summary>The swapnbd-server executable: configuration in, server run until SIGTERM/SIGINT, exit code out.</summary>
public static class ServerCommand
{
    public const int ExitOk = ConsoleProgram.ExitOk;
    public const int ExitConfig = ConsoleProgram.ExitConfig;
    public const int ExitStartFailed = ConsoleProgram.ExitStartFailed;

    private const int PreallocatedLargest = 1 << 20;
    private const long PreallocatedBytesPerClass = 2L << 20;

    public static async Task<int> RunAsync(string[] args)
    {
        // Before anything else starts threads: the flag is per thread and inherited by the threads started after it.
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

        // Before the device and the server exist, so every mapping they make is locked as it is touched.
        var guard = ProcessGuard.Apply(options.LockMemory, populate: true, ProcessGuard.OomScoreAdjMinimum, ioFlusher);
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(logLevel)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            }));
        ProcessGuardLog.Report(loggerFactory.CreateLogger("Swap.Nbd.Server"), guard);
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

        // Buffers for a full kernel queue (128 requests) of 4-16 KiB and fewer larger ones, allocated and touched (so
        // locked) now rather than during the first swap storm. 2 MiB per size class up to 1 MiB: 18 MiB.
        server.Buffers.PreallocateClasses(PreallocatedLargest, PreallocatedBytesPerClass);
        if (device is SwapDevice)
        {
            PinnedBufferPool.Shared.Preallocate(SwapDevice.CopyChunkSize, options.Slabs.ParallelFills);
        }

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
