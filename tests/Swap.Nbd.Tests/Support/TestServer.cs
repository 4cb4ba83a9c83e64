using System.Net;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Server.Hosting;
using Swap.BlockDevices;

namespace Swap.Nbd.Tests.Support;

/// <summary>A real NBD server started in-process on a free loopback port and a Unix socket in its own temp dir.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private TestServer(NbdServer server, SparseMemoryDevice device, string directory)
    {
        Server = server;
        Device = device;
        Directory = directory;
    }

    public NbdServer Server { get; }
    public SparseMemoryDevice Device { get; }
    public string Directory { get; }

    public int Port => ((IPEndPoint)Server.EndPoints.First(e => e is IPEndPoint)).Port;
    public string SocketPath => Path.Combine(Directory, "nbd.sock");
    public string TcpUri => $"nbd://127.0.0.1:{Port}";
    public string UnixUri => $"nbd+unix:///?socket={SocketPath}";

    public static TestServer Start(long size = 64L << 20, Action<NbdServerOptions>? configure = null, ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "swapnbd-test-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        var options = new NbdServerOptions
        {
            Listen = "127.0.0.1:0",
            Socket = Path.Combine(directory, "nbd.sock"),
            ShutdownTimeout = TimeSpan.FromSeconds(5),
        };
        configure?.Invoke(options);
        var device = new SparseMemoryDevice(size);
        var server = new NbdServer(options, device, loggerFactory, time);
        server.Start();
        return new TestServer(server, device, directory);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Device.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a socket file may still be closing.
        }
    }
}
