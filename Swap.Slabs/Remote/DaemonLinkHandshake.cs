using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Swap.Common.Sockets;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// The start of a <see cref="DaemonLink"/>: connect, HELLO with a fresh nonce, check the daemon's proof of the cluster
/// key in its welcome before anything else is sent (a fake daemon is found here), AUTH with this server's proof over
/// the daemon's nonce, and the daemon's OK. All blocking and bounded by the connect timeout. Retries, back-off and the
/// circuit breaker are the caller's (<see cref="DaemonEndpoint"/>'s Polly pipeline).
/// </summary>
internal static class DaemonLinkHandshake
{
    private const ulong HelloRequestId = 1;
    private const ulong AuthRequestId = 2;

    /// <summary>
    /// Connects <paramref name="socket"/> and runs the handshake; returns the daemon's welcome. Throws
    /// <see cref="DaemonAuthException"/> when the key does not match, <see cref="DaemonLinkException"/> on other refusals.
    /// </summary>
    public static DaemonWelcome Run(Socket socket, EndPoint endPoint, ulong clientId, DaemonLinkSettings settings)
    {
        socket.Connect(endPoint);
        socket.ReceiveTimeout = (int)Math.Max(1, settings.ConnectTimeout.TotalMilliseconds);
        var key = settings.AuthKey;
        var flags = DaemonHelloFlags.ReleaseSlabs | (key is null ? DaemonHelloFlags.InsecureNoAuth : DaemonHelloFlags.None);
        var hello = new DaemonHello(DaemonFrameHeader.Version, clientId, flags);
        Span<byte> clientNonce = stackalloc byte[DaemonAuthProof.NonceSize];
        RandomNumberGenerator.Fill(clientNonce);

        Span<byte> frame = stackalloc byte[DaemonFrameHeader.Size + DaemonHello.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, HelloRequestId, DaemonHello.Size).Write(frame);
        hello.Write(frame[DaemonFrameHeader.Size..], clientNonce);
        SocketGather.SendAll(socket, frame);

        var reply = ReceiveHeader(socket, endPoint, DaemonOpcode.Hello, HelloRequestId, key is not null);
        if (reply.BodyLength != DaemonWelcome.Size)
        {
            DaemonProtocolException.Throw($"HELLO reply body of {reply.BodyLength} bytes, expected {DaemonWelcome.Size}");
        }

        Span<byte> body = stackalloc byte[DaemonWelcome.Size];
        SocketReceive.Exact(socket, body);
        Span<byte> daemonNonce = stackalloc byte[DaemonAuthProof.NonceSize];
        Span<byte> proof = stackalloc byte[DaemonAuthProof.Size];
        var welcome = DaemonWelcome.Read(body, daemonNonce, proof);
        if (welcome.Version != DaemonFrameHeader.Version)
        {
            throw new DaemonLinkException($"daemon {endPoint} speaks version {welcome.Version}, this server {DaemonFrameHeader.Version}");
        }

        if (key is not null && !DaemonAuthProof.IsDaemonProof(key.AsSpan(), clientNonce, daemonNonce, hello, welcome, proof))
        {
            throw new DaemonAuthException($"daemon {endPoint} failed to prove the cluster key (another key file, or not a SwapNbd daemon of this cluster); nothing was sent to it");
        }

        // With --insecure-no-auth on both sides the proofs are zeros and nobody checks them.
        proof.Clear();
        if (key is not null)
        {
            DaemonAuthProof.ServerProof(key.AsSpan(), clientNonce, daemonNonce, hello, welcome, proof);
        }

        Span<byte> auth = stackalloc byte[DaemonFrameHeader.Size + DaemonAuthProof.AuthBodySize];
        DaemonFrameHeader.For(DaemonOpcode.Auth, DaemonStatus.Ok, AuthRequestId, DaemonAuthProof.AuthBodySize).Write(auth);
        proof.CopyTo(auth[DaemonFrameHeader.Size..]);
        SocketGather.SendAll(socket, auth);

        var authReply = ReceiveHeader(socket, endPoint, DaemonOpcode.Auth, AuthRequestId, key is not null);
        if (authReply.BodyLength != 0)
        {
            DaemonProtocolException.Throw($"AUTH reply with a {authReply.BodyLength}-byte body");
        }

        socket.ReceiveTimeout = 0;
        return welcome;
    }

    /// <summary>Reads a handshake reply's header; a refusal (with its empty body) becomes the exception that explains it.</summary>
    private static DaemonFrameHeader ReceiveHeader(Socket socket, EndPoint endPoint, DaemonOpcode opcode, ulong requestId, bool keyed)
    {
        Span<byte> header = stackalloc byte[DaemonFrameHeader.Size];
        SocketReceive.Exact(socket, header);
        DaemonFrameHeader.TryRead(header, out var reply);
        if (reply.Opcode != opcode || reply.RequestId != requestId)
        {
            DaemonProtocolException.Throw($"expected the {opcode} reply, got {reply.Opcode} for request {reply.RequestId}");
        }

        if (reply.Status == DaemonStatus.Ok)
        {
            return reply;
        }

        if (reply.BodyLength != 0)
        {
            DaemonProtocolException.Throw($"{opcode} refusal with a {reply.BodyLength}-byte body");
        }

        if (reply.Status == DaemonStatus.Unauthorized)
        {
            throw new DaemonAuthException((opcode, keyed) switch
            {
                (DaemonOpcode.Hello, true) => $"daemon {endPoint} runs without authentication (--insecure-no-auth); give it --auth-key-file with this cluster's key",
                (DaemonOpcode.Hello, false) => $"daemon {endPoint} requires the cluster key; give this server --auth-key-file with the daemons' key",
                _ => $"daemon {endPoint} refused this server's proof of the cluster key: the key files differ",
            });
        }

        throw new DaemonLinkException($"daemon {endPoint} refused {opcode}: {reply.Status}");
    }
}
