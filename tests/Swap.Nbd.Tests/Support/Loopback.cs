using System.Net;
using System.Net.Sockets;

namespace Swap.Nbd.Tests.Support;

/// <summary>Ports on 127.0.0.1 for servers that tests start as processes.</summary>
internal static class Loopback
{
    /// <summary>A port that was free a moment ago (the kernel picked it).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits until something accepts connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static async Task WaitListeningAsync(int port, TimeSpan timeout, Func<string>? why = null, CancellationToken ct = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(IPAddress.Loopback, port, ct);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, ct);
            }
            catch (SocketException e)
            {
                throw new TimeoutException($"nothing listening on 127.0.0.1:{port} after {timeout.TotalSeconds:0.#} s{(why is null ? "" : ": " + why())}", e);
            }
        }
    }
}
