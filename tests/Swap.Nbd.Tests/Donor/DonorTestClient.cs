using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using System.Security.Cryptography;
using Swap.Common.Security;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Donor;

/// <summary>A raw daemon-protocol client over real TCP: one request at a time, EVICTED notices collected on the side.</summary>
internal sealed class DonorTestClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private ulong _nextId = 1;

    private DonorTestClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public Socket Socket => _socket;

    /// <summary>EVICTED notices received so far.</summary>
    public List<SlabRange> Evictions { get; } = [];

    public static async Task<DonorTestClient> ConnectAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint, ct);
        return new DonorTestClient(socket);
    }

    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct) => await _stream.WriteAsync(bytes, ct);

    public async Task SendAsync(DaemonOpcode opcode, ulong requestId, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var frame = new byte[DaemonFrameHeader.Size + body.Length];
        DaemonFrameHeader.For(opcode, DaemonStatus.Ok, requestId, body.Length).Write(frame);
        body.Span.CopyTo(frame.AsSpan(DaemonFrameHeader.Size));
        await _stream.WriteAsync(frame, ct);
    }

    /// <summary>The next frame that is not an EVICTED notice (those go to <see cref="Evictions"/>).</summary>
    public async Task<(DaemonFrameHeader Header, byte[] Body)> ReceiveAsync(CancellationToken ct)
    {
        while (true)
        {
            var frame = await ReceiveAnyAsync(ct);
            if (frame.Header.Opcode == DaemonOpcode.Evicted && frame.Header.RequestId == 0)
            {
                Evictions.Add(SlabRange.ReadSlabOnly(frame.Body));
                continue;
            }

            return frame;
        }
    }

    public async Task<(DaemonFrameHeader Header, byte[] Body)> ReceiveAnyAsync(CancellationToken ct)
    {
        var head = new byte[DaemonFrameHeader.Size];
        await _stream.ReadExactlyAsync(head, ct);
        Assert.That(DaemonFrameHeader.TryRead(head, out var header), Is.True);
        var body = new byte[header.BodyLength];
        await _stream.ReadExactlyAsync(body, ct);
        return (header, body);
    }

    /// <summary>Waits for the next EVICTED notice.</summary>
    public async Task<SlabRange> NextEvictionAsync(CancellationToken ct)
    {
        if (Evictions.Count > 0)
        {
            var first = Evictions[0];
            Evictions.RemoveAt(0);
            return first;
        }

        var frame = await ReceiveAnyAsync(ct);
        Assert.That(frame.Header.Opcode, Is.EqualTo(DaemonOpcode.Evicted));
        Assert.That(frame.Header.RequestId, Is.Zero);
        return SlabRange.ReadSlabOnly(frame.Body);
    }

    public async Task<(DaemonStatus Status, byte[] Body)> RequestAsync(DaemonOpcode opcode, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var id = _nextId++;
        await SendAsync(opcode, id, body, ct);
        var (header, reply) = await ReceiveAsync(ct);
        Assert.That(header.RequestId, Is.EqualTo(id), "reply matches the request");
        Assert.That(header.Opcode, Is.EqualTo(opcode));
        return (header.Status, reply);
    }

    /// <summary>
    /// The whole handshake as swapnbd-server runs it: HELLO with a fresh nonce, the daemon's proof checked, AUTH with
    /// this side's proof. Returns the first status that is not OK (HELLO's or AUTH's), or OK. <paramref name="key"/>
    /// is the run's cluster key unless given; <paramref name="insecure"/> speaks as a server with --insecure-no-auth.
    /// </summary>
    public async Task<DaemonStatus> HelloAsync(ulong clientId, CancellationToken ct, ushort version = DaemonFrameHeader.Version,
        DaemonHelloFlags flags = DaemonHelloFlags.None, ClusterKey? key = null, bool insecure = false)
    {
        key = insecure ? null : key ?? TestKeys.Cluster;
        var hello = new DaemonHello(version, clientId, flags | (insecure ? DaemonHelloFlags.InsecureNoAuth : DaemonHelloFlags.None));
        var welcome = await SendHelloAsync(hello, ct);
        if (welcome.Status != DaemonStatus.Ok)
        {
            return welcome.Status;
        }

        var proof = new byte[DaemonAuthProof.Size];
        if (key is not null)
        {
            Assert.That(DaemonAuthProof.IsDaemonProof(key.AsSpan(), welcome.ClientNonce, welcome.DaemonNonce, hello, welcome.Welcome, welcome.DaemonProof),
                Is.True, "the daemon proves the key");
            DaemonAuthProof.ServerProof(key.AsSpan(), welcome.ClientNonce, welcome.DaemonNonce, hello, welcome.Welcome, proof);
        }

        return await AuthAsync(proof, ct);
    }

    /// <summary>Sends HELLO (a fresh nonce) and returns what the daemon answered, its welcome parsed when OK.</summary>
    public async Task<HelloResult> SendHelloAsync(DaemonHello hello, CancellationToken ct)
    {
        var clientNonce = RandomNumberGenerator.GetBytes(DaemonAuthProof.NonceSize);
        var body = new byte[DaemonHello.Size];
        hello.Write(body, clientNonce);
        var (status, reply) = await RequestAsync(DaemonOpcode.Hello, body, ct);
        if (status != DaemonStatus.Ok)
        {
            Assert.That(reply, Is.Empty, "a refusal has no body");
            return new HelloResult(status, default, clientNonce, [], []);
        }

        var daemonNonce = new byte[DaemonAuthProof.NonceSize];
        var daemonProof = new byte[DaemonAuthProof.Size];
        var welcome = DaemonWelcome.Read(reply, daemonNonce, daemonProof);
        Assert.That(welcome.Version, Is.EqualTo(DaemonFrameHeader.Version));
        return new HelloResult(status, welcome, clientNonce, daemonNonce, daemonProof);
    }

    /// <summary>Sends AUTH with <paramref name="proof"/> and returns the daemon's status.</summary>
    public async Task<DaemonStatus> AuthAsync(byte[] proof, CancellationToken ct)
    {
        var (status, reply) = await RequestAsync(DaemonOpcode.Auth, proof, ct);
        Assert.That(reply, Is.Empty, "an AUTH reply has no body");
        return status;
    }

    public async Task<(DaemonStatus Status, uint Free)> QueryFreeAsync(ulong slabSize, CancellationToken ct)
    {
        var body = new byte[SlabQuery.Size];
        new SlabQuery(slabSize).Write(body);
        var (status, reply) = await RequestAsync(DaemonOpcode.QueryFree, body, ct);
        return (status, status == DaemonStatus.Ok ? DaemonStats.ReadFreeSlabs(reply) : 0);
    }

    public async Task<(DaemonStatus Status, SlabGrant Grant)> AllocAsync(ulong slabSize, CancellationToken ct, uint serverSlab = 0)
    {
        var body = new byte[SlabAllocRequest.Size];
        new SlabAllocRequest(slabSize, serverSlab).Write(body);
        var (status, reply) = await RequestAsync(DaemonOpcode.AllocSlab, body, ct);
        return (status, status == DaemonStatus.Ok ? SlabGrant.Read(reply) : default);
    }

    public async Task<SlabGrant> AllocOkAsync(ulong slabSize, CancellationToken ct)
    {
        var (status, grant) = await AllocAsync(slabSize, ct);
        Assert.That(status, Is.EqualTo(DaemonStatus.Ok));
        return grant;
    }

    public async Task<DaemonStatus> WriteAsync(SlabGrant slab, ulong offset, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var body = new byte[SlabRange.Size + data.Length];
        new SlabRange(slab.SlabId, slab.Epoch, offset, (uint)data.Length).Write(body);
        data.Span.CopyTo(body.AsSpan(SlabRange.Size));
        return (await RequestAsync(DaemonOpcode.Write, body, ct)).Status;
    }

    public async Task<(DaemonStatus Status, byte[] Data)> ReadAsync(SlabGrant slab, ulong offset, uint length, CancellationToken ct)
    {
        var (status, reply) = await RequestAsync(DaemonOpcode.Read, Range(slab, offset, length), ct);
        if (status == DaemonStatus.Ok)
        {
            Assert.That(reply, Has.Length.EqualTo(length));
        }

        return (status, reply);
    }

    public async Task<DaemonStatus> TrimAsync(SlabGrant slab, ulong offset, uint length, CancellationToken ct) =>
        (await RequestAsync(DaemonOpcode.Trim, Range(slab, offset, length), ct)).Status;

    public async Task<DaemonStatus> FreeAsync(SlabGrant slab, CancellationToken ct)
    {
        var body = new byte[SlabRange.SlabOnlySize];
        new SlabRange(slab.SlabId, slab.Epoch, 0, 0).WriteSlabOnly(body);
        return (await RequestAsync(DaemonOpcode.FreeSlab, body, ct)).Status;
    }

    public async Task<DaemonStats> StatsAsync(CancellationToken ct)
    {
        var (status, reply) = await RequestAsync(DaemonOpcode.Stats, Array.Empty<byte>(), ct);
        Assert.That(status, Is.EqualTo(DaemonStatus.Ok));
        return DaemonStats.Read(reply);
    }

    /// <summary>True once the daemon has closed the connection (end of stream or reset).</summary>
    public async Task<bool> IsClosedByPeerAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                if (await _stream.ReadAsync(buffer, ct) == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true;
        }
    }

    public static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static byte[] Range(SlabGrant slab, ulong offset, uint length)
    {
        var body = new byte[SlabRange.Size];
        new SlabRange(slab.SlabId, slab.Epoch, offset, length).Write(body);
        return body;
    }

    public static byte[] HeaderOnly(DaemonOpcode opcode, ulong requestId, uint length)
    {
        var bytes = new byte[DaemonFrameHeader.Size];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), (ushort)opcode);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), requestId);
        return bytes;
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();
}
