using System.Net;
using System.Net.Sockets;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// The start of a <see cref="DaemonLink"/>: connect, send HELLO, read the daemon's welcome and check its version,
/// all blocking and bounded by the connect timeout. Retries, back-off and the circuit breaker are the caller's
/// (<see cref="DaemonEndpoint"/>'s Polly pipeline).
/// </summary>
internal static class DaemonLinkHandshake
{
    /// <summary>Connects <paramref name="socket"/> and says HELLO; returns what the daemon answered.</summary>
    public static DaemonWelcome Run(Socket socket, EndPoint endPoint, ulong clientId, DaemonLinkSettings settings)
    {
        socket.Connect(endPoint);
        socket.ReceiveTimeout = (int)Math.Max(1, settings.ConnectTimeout.TotalMilliseconds);
        Span<byte> frame = stackalloc byte[DaemonFrameHeader.Size + DaemonHello.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, 1, DaemonHello.Size).Write(frame);
        new DaemonHello(DaemonFrameHeader.Version, clientId, DaemonHelloFlags.ReleaseSlabs).Write(frame[DaemonFrameHeader.Size..]);
        SocketGather.SendAll(socket, frame);
        Span<byte> header = stackalloc byte[DaemonFrameHeader.Size];
        SocketReceive.Exact(socket, header);
        DaemonFrameHeader.TryRead(header, out var reply);
        if (reply.Opcode != DaemonOpcode.Hello || reply.RequestId != 1)
        {
            DaemonProtocolException.Throw($"expected the HELLO reply, got {reply.Opcode} for request {reply.RequestId}");
        }

        if (reply.Status != DaemonStatus.Ok)
        {
            if (reply.BodyLength != 0)
            {
                DaemonProtocolException.Throw($"HELLO refusal with a {reply.BodyLength}-byte body");
            }

            throw new DaemonLinkException($"daemon {endPoint} refused HELLO: {reply.Status}");
        }

        if (reply.BodyLength != DaemonWelcome.Size)
        {
            DaemonProtocolException.Throw($"HELLO reply body of {reply.BodyLength} bytes, expected {DaemonWelcome.Size}");
        }

        Span<byte> body = stackalloc byte[DaemonWelcome.Size];
        SocketReceive.Exact(socket, body);
        var welcome = DaemonWelcome.Read(body);
        if (welcome.Version != DaemonFrameHeader.Version)
        {
            throw new DaemonLinkException($"daemon {endPoint} speaks version {welcome.Version}, this server {DaemonFrameHeader.Version}");
        }

        socket.ReceiveTimeout = 0;
        return welcome;
    }
}
