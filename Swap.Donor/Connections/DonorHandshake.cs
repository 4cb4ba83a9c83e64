using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;

namespace Swap.Donor.Connections;

/// <summary>
/// The daemon's side of one connection's handshake (protocol version 2): HELLO is answered with a fresh nonce and
/// the daemon's proof of the cluster key, and nothing the HELLO asks (register the client id, release its slabs,
/// count it as a client) happens until AUTH brings the server's proof over that nonce. A wrong proof, a key on one
/// side only, or any request before the end gets a refusal that is logged naming the peer, and the connection closes.
/// </summary>
internal sealed class DonorHandshake(DonorConnection connection, DonorDaemon daemon, ILogger logger)
{
    private readonly byte[] _clientNonce = new byte[DaemonAuthProof.NonceSize];
    private readonly byte[] _daemonNonce = new byte[DaemonAuthProof.NonceSize];
    private DaemonHello _hello;
    private Stage _stage;

    private enum Stage
    {
        AwaitingHello,
        AwaitingAuth,
        Done,
    }

    /// <summary>True once AUTH verified and the client took the connection: requests may be served.</summary>
    public bool IsDone => _stage == Stage.Done;

    /// <summary>
    /// Answers a HELLO whose body (<paramref name="bodyLength"/> bytes, of which <paramref name="body"/> holds the
    /// first <see cref="DaemonHello.Size"/> at most); an OK reply's welcome is written to <paramref name="reply"/>.
    /// A frame that breaks the protocol throws <see cref="DaemonProtocolException"/>.
    /// </summary>
    public HandshakeStep Hello(ReadOnlySpan<byte> body, int bodyLength, Span<byte> reply)
    {
        if (_stage != Stage.AwaitingHello)
        {
            DaemonProtocolException.Throw("a second HELLO on one connection");
        }

        if (DaemonHello.ReadVersion(body) != DaemonFrameHeader.Version)
        {
            // A server of another version may retry with this one on the same connection.
            return new HandshakeStep(DaemonStatus.Version, 0, Close: false);
        }

        if (bodyLength != DaemonHello.Size)
        {
            DaemonProtocolException.Throw($"HELLO body of {bodyLength} bytes, version 2 has {DaemonHello.Size}");
        }

        var hello = DaemonHello.Read(body, _clientNonce);
        if ((hello.Flags & ~DaemonHelloFlags.Known) != 0)
        {
            return new HandshakeStep(DaemonStatus.Invalid, 0, Close: false);
        }

        var serverInsecure = (hello.Flags & DaemonHelloFlags.InsecureNoAuth) != 0;
        if (daemon.Key is not null && serverInsecure)
        {
            return Refuse(DaemonStatus.Unauthorized, $"server {hello.ClientId:x16} runs without authentication (--insecure-no-auth); give it --auth-key-file with this cluster's key");
        }

        if (daemon.Key is null && !serverInsecure)
        {
            return Refuse(DaemonStatus.Unauthorized, $"server {hello.ClientId:x16} holds a cluster key but this daemon runs with --insecure-no-auth; give the daemon --auth-key-file");
        }

        _hello = hello;
        RandomNumberGenerator.Fill(_daemonNonce);
        Span<byte> proof = stackalloc byte[DaemonAuthProof.Size];
        proof.Clear();
        if (daemon.Key is { } key)
        {
            DaemonAuthProof.DaemonProof(key.AsSpan(), _clientNonce, _daemonNonce, hello, daemon.Welcome, proof);
        }

        daemon.Welcome.Write(reply, _daemonNonce, proof);
        _stage = Stage.AwaitingAuth;
        return new HandshakeStep(DaemonStatus.Ok, DaemonWelcome.Size, Close: false);
    }

    /// <summary>
    /// Answers AUTH (body exactly <see cref="DaemonAuthProof.AuthBodySize"/> bytes): checks the server's proof, then
    /// does what the HELLO asked.
    /// </summary>
    public HandshakeStep Auth(ReadOnlySpan<byte> body, int bodyLength)
    {
        if (_stage == Stage.Done)
        {
            DaemonProtocolException.Throw("a second AUTH on one connection");
        }

        if (_stage == Stage.AwaitingHello)
        {
            return Refuse(DaemonStatus.HelloFirst, "AUTH before HELLO");
        }

        if (bodyLength != DaemonAuthProof.AuthBodySize)
        {
            DaemonProtocolException.Throw($"AUTH body of {bodyLength} bytes, need {DaemonAuthProof.AuthBodySize}");
        }

        if (daemon.Key is { } key &&
            !DaemonAuthProof.IsServerProof(key.AsSpan(), _clientNonce, _daemonNonce, _hello, daemon.Welcome, body[..DaemonAuthProof.AuthBodySize]))
        {
            return Refuse(DaemonStatus.Unauthorized, $"server {_hello.ClientId:x16} failed to prove the cluster key (another key file, or a replayed handshake)");
        }

        var status = daemon.Clients.Hello(connection, _hello.ClientId, (_hello.Flags & DaemonHelloFlags.ReleaseSlabs) != 0);
        if (status != DaemonStatus.Ok)
        {
            // The registry logged why (LIMIT); the nonce is spent, so the server starts over on a new connection.
            daemon.Metrics.Refused();
            return new HandshakeStep(status, 0, Close: true);
        }

        _stage = Stage.Done;
        connection.HelloDone(_hello.ClientId);
        return new HandshakeStep(DaemonStatus.Ok, 0, Close: false);
    }

    /// <summary>A request other than HELLO or AUTH arrived before the handshake completed.</summary>
    public HandshakeStep Early(DaemonOpcode opcode) =>
        Refuse(DaemonStatus.HelloFirst, $"{opcode} before the handshake (HELLO, AUTH) completed");

    private HandshakeStep Refuse(DaemonStatus status, string reason)
    {
        DonorLog.HandshakeRefused(logger, connection.Id, connection.Remote, reason);
        daemon.Metrics.Refused();
        return new HandshakeStep(status, 0, Close: true);
    }
}
