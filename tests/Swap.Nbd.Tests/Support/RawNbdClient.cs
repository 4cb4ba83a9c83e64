using System.Buffers.Binary;
using System.Net.Sockets;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Support;

/// <summary>A bare-socket NBD peer for tests that must send what no well-behaved client would.</summary>
public sealed class RawNbdClient : IDisposable
{
    private readonly Socket _socket;

    private RawNbdClient(Socket socket) => _socket = socket;

    public Socket Socket => _socket;

    public static async Task<RawNbdClient> ConnectAsync(TestServer server, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", server.Port, ct);
        return new RawNbdClient(socket);
    }

    /// <summary>Connects, reads the greeting and answers with the given client flags.</summary>
    public static async Task<RawNbdClient> GreetAsync(TestServer server, CancellationToken ct, NbdClientFlags flags = NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes)
    {
        var client = await ConnectAsync(server, ct);
        var greeting = await client.ReadAsync(NbdHandshake.GreetingSize, ct);
        NbdHandshake.TryReadGreeting(greeting, out _);
        var bytes = new byte[4];
        NbdHandshake.WriteClientFlags(bytes, flags);
        await client.SendAsync(bytes, ct);
        return client;
    }

    /// <summary>Greets, optionally negotiates structured replies and base:allocation, then OPT_GO into transmission.</summary>
    public static async Task<RawNbdClient> TransmissionAsync(TestServer server, CancellationToken ct, bool structured = false, bool metaContext = false)
    {
        var client = await GreetAsync(server, ct);
        if (structured)
        {
            await client.SendOptionAsync(NbdOption.StructuredReply, [], ct);
            await client.ExpectFinalReplyAsync(NbdOptionReplyType.Ack, ct);
        }

        if (metaContext)
        {
            var data = new byte[64];
            var n = NbdOptionCodec.WriteMetaContextRequest(data, "", ["base:allocation"]);
            await client.SendOptionAsync(NbdOption.SetMetaContext, data.AsSpan(0, n).ToArray(), ct);
            await client.ExpectFinalReplyAsync(NbdOptionReplyType.Ack, ct);
        }

        var go = new byte[16];
        var len = NbdOptionCodec.WriteInfoRequest(go, "", []);
        await client.SendOptionAsync(NbdOption.Go, go.AsSpan(0, len).ToArray(), ct);
        await client.ExpectFinalReplyAsync(NbdOptionReplyType.Ack, ct);
        return client;
    }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        while (!bytes.IsEmpty)
        {
            var n = await _socket.SendAsync(bytes, SocketFlags.None, ct);
            bytes = bytes[n..];
        }
    }

    public Task SendOptionAsync(NbdOption option, byte[] data, CancellationToken ct) => SendOptionAsync(option, (uint)data.Length, data, ct);

    public async Task SendOptionAsync(NbdOption option, uint declaredLength, byte[] data, CancellationToken ct)
    {
        var bytes = new byte[NbdOptionHeader.Size + data.Length];
        NbdOptionCodec.WriteHeader(bytes, option, declaredLength);
        data.CopyTo(bytes, NbdOptionHeader.Size);
        await SendAsync(bytes, ct);
    }

    public async Task<(NbdOptionReplyHeader Header, byte[] Data)> ReadOptionReplyAsync(CancellationToken ct)
    {
        var header = await ReadAsync(NbdOptionReplyHeader.Size, ct);
        NbdOptionCodec.TryReadReplyHeader(header, out var reply);
        return (reply, await ReadAsync((int)reply.Length, ct));
    }

    /// <summary>Reads option replies until the final one (ACK or error) and returns its type.</summary>
    public async Task<NbdOptionReplyType> ReadFinalReplyAsync(CancellationToken ct)
    {
        while (true)
        {
            var (header, _) = await ReadOptionReplyAsync(ct);
            if (header.Type is not (NbdOptionReplyType.Info or NbdOptionReplyType.Server or NbdOptionReplyType.MetaContext))
            {
                return header.Type;
            }
        }
    }

    public async Task ExpectFinalReplyAsync(NbdOptionReplyType expected, CancellationToken ct)
    {
        var type = await ReadFinalReplyAsync(ct);
        if (type != expected)
        {
            throw new InvalidOperationException($"expected {expected}, got {type}");
        }
    }

    public Task SendRequestAsync(NbdCommand command, ulong offset, uint length, ulong cookie, CancellationToken ct, NbdCommandFlags flags = 0, byte[]? payload = null)
    {
        var bytes = new byte[NbdRequest.Size + (payload?.Length ?? 0)];
        new NbdRequest(flags, command, cookie, offset, length).Write(bytes);
        payload?.CopyTo(bytes, NbdRequest.Size);
        return SendAsync(bytes, ct);
    }

    /// <summary>Reads one simple reply header (and no data).</summary>
    public async Task<NbdSimpleReply> ReadSimpleReplyAsync(CancellationToken ct)
    {
        var bytes = await ReadAsync(NbdSimpleReply.Size, ct);
        if (BinaryPrimitives.ReadUInt32BigEndian(bytes) != NbdMagic.SimpleReply)
        {
            throw new InvalidOperationException($"expected a simple reply, got magic {BinaryPrimitives.ReadUInt32BigEndian(bytes):x8}");
        }

        return NbdSimpleReply.Read(bytes);
    }

    /// <summary>A WRITE then a READ of the same bytes, to show the connection still works.</summary>
    public async Task AssertHealthyAsync(CancellationToken ct)
    {
        var data = new byte[4096];
        Random.Shared.NextBytes(data);
        await SendRequestAsync(NbdCommand.Write, 8192, 4096, 0xAAAA, ct, payload: data);
        var reply = await ReadSimpleReplyAsync(ct);
        if (reply != new NbdSimpleReply(NbdError.None, 0xAAAA))
        {
            throw new InvalidOperationException($"health WRITE got {reply}");
        }

        await SendRequestAsync(NbdCommand.Read, 8192, 4096, 0xBBBB, ct);
        reply = await ReadSimpleReplyAsync(ct);
        var back = await ReadAsync(4096, ct);
        if (reply != new NbdSimpleReply(NbdError.None, 0xBBBB) || !back.AsSpan().SequenceEqual(data))
        {
            throw new InvalidOperationException("health READ returned other data");
        }
    }

    public async Task<byte[]> ReadAsync(int count, CancellationToken ct)
    {
        var buffer = new byte[count];
        var at = 0;
        while (at < count)
        {
            var n = await _socket.ReceiveAsync(buffer.AsMemory(at), SocketFlags.None, ct);
            if (n == 0)
            {
                throw new EndOfStreamException($"server closed the connection after {at} of {count} bytes");
            }

            at += n;
        }

        return buffer;
    }

    /// <summary>True if the server closed the connection (EOF or reset) within the timeout, reading and dropping whatever came first.</summary>
    public async Task<bool> IsClosedByServerAsync(TimeSpan within, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(within);
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                if (await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }

    public void Dispose() => _socket.Dispose();
}
