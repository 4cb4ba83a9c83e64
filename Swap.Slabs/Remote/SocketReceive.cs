using System.Net.Sockets;

namespace Swap.Slabs.Remote;

/// <summary>The daemon link's blocking receives: exactly as many bytes as asked for, or the link is gone.</summary>
internal static class SocketReceive
{
    /// <summary>Fills <paramref name="destination"/>; throws <see cref="DaemonLinkException"/> if the daemon closes first.</summary>
    public static void Exact(Socket socket, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = socket.Receive(destination);
            if (n == 0)
            {
                throw new DaemonLinkException("the daemon closed the connection");
            }

            destination = destination[n..];
        }
    }
}
