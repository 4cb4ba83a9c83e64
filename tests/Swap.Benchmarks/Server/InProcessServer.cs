using Swap.Nbd.Server.Hosting;
using Swap.BlockDevices;

namespace Swap.Benchmarks.Server;

/// <summary>A real NbdServer on a Unix socket in its own temp dir, over a memory device whose first half is written.</summary>
internal sealed class InProcessServer : IAsyncDisposable
{
    public const long DeviceSize = 64L << 20;
    /// <summary>Requests stay inside this pre-written range, so reads copy real pages instead of zero-filling holes.</summary>
    public const long FilledBytes = 32L << 20;

    private readonly string _directory;

    private InProcessServer(NbdServer server, SparseMemoryDevice device, string directory)
    {
        Server = server;
        Device = device;
        _directory = directory;
    }

    public NbdServer Server { get; }
    public SparseMemoryDevice Device { get; }
    public string SocketPath => Path.Combine(_directory, "nbd.sock");

    public static InProcessServer Start()
    {
        var directory = Path.Combine(Path.GetTempPath(), "swapnbd-bench-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var device = new SparseMemoryDevice(DeviceSize);
        var page = new byte[4096];
        Random.Shared.NextBytes(page);
        for (long offset = 0; offset < FilledBytes; offset += page.Length)
        {
            device.TryWrite(offset, page, fua: false);
        }

        var server = new NbdServer(new NbdServerOptions
        {
            Listen = "",
            Socket = Path.Combine(directory, "nbd.sock"),
            ShutdownTimeout = TimeSpan.FromSeconds(5),
        }, device);
        server.Start();
        return new InProcessServer(server, device, directory);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync().ConfigureAwait(false);
        Device.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the socket file may still be closing.
        }
    }
}
