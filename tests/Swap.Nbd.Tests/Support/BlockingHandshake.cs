using System.Net.Sockets;
using System.Security.Cryptography;
using NUnit.Framework;
using Swap.Common.Security;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// Both sides of the daemon handshake over a blocking socket, for tests that drive raw sockets: the server's
/// (<see cref="Run"/>) and a fake daemon's (<see cref="Answer"/>). Each checks the other side's proof.
/// </summary>
internal static class BlockingHandshake
{
    /// <summary>HELLO, the daemon's proof checked, AUTH, the OK: as swapnbd-server does it.</summary>
    public static void Run(Socket socket, ulong clientId, ClusterKey key)
    {
        var hello = new DaemonHello(DaemonFrameHeader.Version, clientId);
        var clientNonce = RandomNumberGenerator.GetBytes(DaemonAuthProof.NonceSize);
        var frame = new byte[DaemonFrameHeader.Size + DaemonHello.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, 1, DaemonHello.Size).Write(frame);
        hello.Write(frame.AsSpan(DaemonFrameHeader.Size), clientNonce);
        socket.Send(frame);

        var reply = new byte[DaemonFrameHeader.Size + DaemonWelcome.Size];
        Receive(socket, reply);
        DaemonFrameHeader.TryRead(reply, out var header);
        Assert.That((header.Opcode, header.Status), Is.EqualTo((DaemonOpcode.Hello, DaemonStatus.Ok)));
        var daemonNonce = new byte[DaemonAuthProof.NonceSize];
        var proof = new byte[DaemonAuthProof.Size];
        var welcome = DaemonWelcome.Read(reply.AsSpan(DaemonFrameHeader.Size), daemonNonce, proof);
        Assert.That(DaemonAuthProof.IsDaemonProof(key.AsSpan(), clientNonce, daemonNonce, hello, welcome, proof), Is.True, "the daemon proves the key");

        var auth = new byte[DaemonFrameHeader.Size + DaemonAuthProof.AuthBodySize];
        DaemonFrameHeader.For(DaemonOpcode.Auth, DaemonStatus.Ok, 2, DaemonAuthProof.AuthBodySize).Write(auth);
        DaemonAuthProof.ServerProof(key.AsSpan(), clientNonce, daemonNonce, hello, welcome, auth.AsSpan(DaemonFrameHeader.Size));
        socket.Send(auth);
        var ok = new byte[DaemonFrameHeader.Size];
        Receive(socket, ok);
        DaemonFrameHeader.TryRead(ok, out header);
        Assert.That((header.Opcode, header.Status, header.BodyLength), Is.EqualTo((DaemonOpcode.Auth, DaemonStatus.Ok, 0)));
    }

    /// <summary>
    /// A fake daemon's side: reads HELLO, answers with a welcome that proves <paramref name="key"/>, reads AUTH and
    /// answers OK if the server's proof holds. False if the server hung up or failed its proof.
    /// </summary>
    public static bool Answer(Socket socket, ClusterKey key, ulong daemonId)
    {
        var frame = new byte[DaemonFrameHeader.Size + DaemonHello.Size];
        if (!TryReceive(socket, frame))
        {
            return false;
        }

        var clientNonce = new byte[DaemonAuthProof.NonceSize];
        var hello = DaemonHello.Read(frame.AsSpan(DaemonFrameHeader.Size), clientNonce);
        var daemonNonce = RandomNumberGenerator.GetBytes(DaemonAuthProof.NonceSize);
        var welcome = new DaemonWelcome(DaemonFrameHeader.Version, 64, daemonId);
        var proof = new byte[DaemonAuthProof.Size];
        DaemonAuthProof.DaemonProof(key.AsSpan(), clientNonce, daemonNonce, hello, welcome, proof);
        var reply = new byte[DaemonFrameHeader.Size + DaemonWelcome.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, 1, DaemonWelcome.Size).Write(reply);
        welcome.Write(reply.AsSpan(DaemonFrameHeader.Size), daemonNonce, proof);
        socket.Send(reply);

        var auth = new byte[DaemonFrameHeader.Size + DaemonAuthProof.AuthBodySize];
        if (!TryReceive(socket, auth) ||
            !DaemonAuthProof.IsServerProof(key.AsSpan(), clientNonce, daemonNonce, hello, welcome, auth.AsSpan(DaemonFrameHeader.Size)))
        {
            return false;
        }

        var ok = new byte[DaemonFrameHeader.Size];
        DaemonFrameHeader.For(DaemonOpcode.Auth, DaemonStatus.Ok, 2, 0).Write(ok);
        socket.Send(ok);
        return true;
    }

    private static void Receive(Socket socket, Span<byte> destination)
    {
        if (!TryReceive(socket, destination))
        {
            throw new EndOfStreamException("the peer closed the connection in the handshake");
        }
    }

    private static bool TryReceive(Socket socket, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = socket.Receive(destination);
            if (n == 0)
            {
                return false;
            }

            destination = destination[n..];
        }

        return true;
    }
}
