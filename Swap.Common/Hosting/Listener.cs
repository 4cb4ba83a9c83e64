using System.Net;
using System.Net.Sockets;

namespace Swap.Common.Hosting;

/// <summary>The accept step shared by the NBD server and the donor daemon.</summary>
public static class Listener
{
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    /// <summary>
    /// A TCP socket bound to <paramref name="endPoint"/> and listening. It may take a port that connections of an
    /// earlier process still hold in TIME_WAIT (SO_REUSEADDR), but never one another process listens on: .NET's
    /// ReuseAddress option also sets SO_REUSEPORT on Linux, which let a second server bind the same port and receive
    /// some of the clients' connections, so a kernel nbd device could end up with its connections on two servers.
    /// </summary>
    public static Socket ListenTcp(EndPoint endPoint, int backlog = 128)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (OperatingSystem.IsLinux())
            {
                socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            }
            else
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            }

            socket.Bind(endPoint);
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The next connection, or null once the listener is closed (or fails while <paramref name="stopping"/>).
    /// A transient failure (EMFILE, ECONNABORTED) is reported and retried after 100 ms, so the connections already
    /// open keep being served.
    /// </summary>
    public static async Task<Socket?> AcceptAsync(Socket listener, Func<bool> stopping, Action<SocketException> failed, TimeProvider time)
    {
        while (true)
        {
            try
            {
                return await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ObjectDisposedException || (ex is SocketException && stopping()))
            {
                return null;
            }
            catch (SocketException ex)
            {
                failed(ex);
                await Task.Delay(TimeSpan.FromMilliseconds(100), time).ConfigureAwait(false);
            }
        }
    }
}
