using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A deliberately dumb NBD client over a raw socket: it does the handshake with the Swap.Nbd.Protocol codecs when
/// asked to, and otherwise sends exactly the bytes a test gives it, so tests can misbehave on purpose.
/// </summary>
/// <remarks>Over 300 lines on purpose: one small method per way of speaking (each option, each request form, raw
/// bytes, reading each reply kind) that the bad-input tests combine; split, they would share every field.</remarks>
public sealed class RawNbdClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private ulong _nextCookie = 1;

    private RawNbdClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public NetworkStream Stream => _stream;
    public bool StructuredReplies { get; private set; }
    public ulong ExportSize { get; private set; }
    public NbdTransmissionFlags TransmissionFlags { get; private set; }

    public static Task<RawNbdClient> ConnectTcpAsync(TestServer server, CancellationToken ct) => ConnectTcpAsync(server.Port, ct);

    public static async Task<RawNbdClient> ConnectTcpAsync(int port, CancellationToken ct)
    {
        var socket = new Socket(System.Net.Sockets.AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port), ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new RawNbdClient(socket);
    }

    public static async Task<RawNbdClient> ConnectUnixAsync(string path, CancellationToken ct)
    {
        var socket = new Socket(System.Net.Sockets.AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new RawNbdClient(socket);
    }

    /// <summary>Connects over TCP and negotiates up to transmission with OPT_GO for the default export.</summary>
    public static async Task<RawNbdClient> OpenAsync(TestServer server, CancellationToken ct, bool structured = false, bool metaContext = false)
    {
        var client = await ConnectTcpAsync(server, ct);
        try
        {
            await client.HandshakeAsync(ct, structured, metaContext);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    public async Task<NbdHandshakeFlags> ReadGreetingAsync(CancellationToken ct)
    {
        var greeting = await ReadExactAsync(NbdHandshake.GreetingSize, ct);
        NbdHandshake.TryReadGreeting(greeting, out var flags);
        return flags;
    }

    public Task SendClientFlagsAsync(uint flags, CancellationToken ct)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, flags);
        return SendAsync(bytes, ct);
    }

    /// <summary>Greeting and client flags (FIXED_NEWSTYLE | NO_ZEROES): ready for options.</summary>
    public async Task StartOptionsAsync(CancellationToken ct)
    {
        await ReadGreetingAsync(ct);
        await SendClientFlagsAsync((uint)(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes), ct);
    }

    public async Task HandshakeAsync(CancellationToken ct, bool structured = false, bool metaContext = false)
    {
        await StartOptionsAsync(ct);
        if (structured)
        {
            await SendOptionAsync(NbdOption.StructuredReply, [], ct);
            var reply = await ReadOptionReplyAsync(ct);
            if (reply.Type != NbdOptionReplyType.Ack)
            {
                throw new InvalidOperationException($"OPT_STRUCTURED_REPLY answered {reply.Type}");
            }

            StructuredReplies = true;
        }

        if (metaContext)
        {
            var data = new byte[64];
            var length = NbdOptionCodec.WriteMetaContextRequest(data, "", ["base:allocation"]);
            await SendOptionAsync(NbdOption.SetMetaContext, data.AsSpan(0, length).ToArray(), ct);
            var replies = await ReadOptionRepliesAsync(ct);
            if (replies[^1].Type != NbdOptionReplyType.Ack)
            {
                throw new InvalidOperationException($"OPT_SET_META_CONTEXT answered {replies[^1].Type}");
            }
        }

        var go = await GoAsync("", ct);
        if (go[^1].Type != NbdOptionReplyType.Ack)
        {
            throw new InvalidOperationException($"OPT_GO answered {go[^1].Type}");
        }
    }

    /// <summary>After some options were tried: OPT_GO for the default export and one round trip.</summary>
    public async Task HandshakeAfterOptionsAsync(CancellationToken ct)
    {
        var go = await GoAsync("", ct);
        if (go[^1].Type != NbdOptionReplyType.Ack)
        {
            throw new InvalidOperationException($"OPT_GO answered {go[^1].Type}");
        }

        await RoundTripAsync(ct);
    }

    /// <summary>Sends OPT_GO and reads every reply up to the final one; records size and flags from NBD_INFO_EXPORT.</summary>
    public async Task<List<RawOptionReply>> GoAsync(string name, CancellationToken ct)
    {
        var data = new byte[8 + (name.Length * 4)];
        var length = NbdOptionCodec.WriteInfoRequest(data, name, []);
        await SendOptionAsync(NbdOption.Go, data.AsSpan(0, length).ToArray(), ct);
        var replies = await ReadOptionRepliesAsync(ct);
        foreach (var reply in replies)
        {
            if (reply.Type == NbdOptionReplyType.Info && BinaryPrimitives.ReadUInt16BigEndian(reply.Data) == (ushort)NbdInfoType.Export)
            {
                ExportSize = BinaryPrimitives.ReadUInt64BigEndian(reply.Data.AsSpan(2));
                TransmissionFlags = (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(reply.Data.AsSpan(10));
            }
        }

        return replies;
    }

    public Task SendOptionAsync(NbdOption option, byte[] data, CancellationToken ct) =>
        SendOptionAsync(NbdMagic.IHaveOpt, (uint)option, data, (uint)data.Length, ct);

    /// <summary>An option with any magic and any claimed length (the data sent may be shorter or absent).</summary>
    public Task SendOptionAsync(ulong magic, uint option, byte[] data, uint claimedLength, CancellationToken ct)
    {
        var bytes = new byte[NbdOptionHeader.Size + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, magic);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), claimedLength);
        data.CopyTo(bytes, NbdOptionHeader.Size);
        return SendAsync(bytes, ct);
    }

    public async Task<RawOptionReply> ReadOptionReplyAsync(CancellationToken ct)
    {
        var header = await ReadExactAsync(NbdOptionReplyHeader.Size, ct);
        NbdOptionCodec.TryReadReplyHeader(header, out var h);
        if (h.Length > 1 << 20)
        {
            throw new InvalidOperationException($"option reply claims {h.Length} bytes");
        }

        var data = await ReadExactAsync((int)h.Length, ct);
        return new RawOptionReply(h.Option, h.Type, data);
    }

    /// <summary>Reads option replies until ACK or an error (the final reply), returning all of them.</summary>
    public async Task<List<RawOptionReply>> ReadOptionRepliesAsync(CancellationToken ct)
    {
        var replies = new List<RawOptionReply>();
        while (true)
        {
            var reply = await ReadOptionReplyAsync(ct);
            replies.Add(reply);
            if (reply.Type == NbdOptionReplyType.Ack || reply.IsError)
            {
                return replies;
            }
        }
    }

    public ulong NextCookie() => _nextCookie++;

    public Task SendRequestAsync(NbdRequest request, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var bytes = new byte[NbdRequest.Size + payload.Length];
        request.Write(bytes);
        payload.Span.CopyTo(bytes.AsSpan(NbdRequest.Size));
        return SendAsync(bytes, ct);
    }

    public Task SendRequestAsync(NbdRequest request, CancellationToken ct) => SendRequestAsync(request, ReadOnlyMemory<byte>.Empty, ct);

    public async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct) => await _stream.WriteAsync(bytes, ct);

    /// <summary>Reads one reply; a successful simple reply is followed by <paramref name="simpleDataLength"/> data bytes.</summary>
    public async Task<RawReply> ReadReplyAsync(CancellationToken ct, int simpleDataLength = 0)
    {
        var magicBytes = await ReadExactAsync(4, ct);
        var magic = BinaryPrimitives.ReadUInt32BigEndian(magicBytes);
        if (magic == NbdMagic.SimpleReply)
        {
            var rest = await ReadExactAsync(NbdSimpleReply.Size - 4, ct);
            var header = new byte[NbdSimpleReply.Size];
            magicBytes.CopyTo(header, 0);
            rest.CopyTo(header, 4);
            var simple = NbdSimpleReply.Read(header);
            var data = simple.Error == NbdError.None && simpleDataLength > 0 ? await ReadExactAsync(simpleDataLength, ct) : [];
            return new RawReply(simple.Cookie, simple.Error, null, data);
        }

        if (magic == NbdMagic.StructuredReply)
        {
            var rest = await ReadExactAsync(NbdStructuredReply.Size - 4, ct);
            var header = new byte[NbdStructuredReply.Size];
            magicBytes.CopyTo(header, 0);
            rest.CopyTo(header, 4);
            var chunk = NbdStructuredReply.Read(header);
            if (chunk.Length > 64 << 20)
            {
                throw new InvalidOperationException($"structured chunk claims {chunk.Length} bytes");
            }

            var payload = await ReadExactAsync((int)chunk.Length, ct);
            var error = ((ushort)chunk.Type & 0x8000) != 0 && payload.Length >= 4
                ? (NbdError)BinaryPrimitives.ReadUInt32BigEndian(payload)
                : NbdError.None;
            return new RawReply(chunk.Cookie, error, chunk, payload);
        }

        throw new InvalidOperationException($"reply has a bad magic 0x{magic:x8}");
    }

    /// <summary>WRITE then READ back through this connection; throws on any error.</summary>
    public async Task WriteAsync(ulong offset, byte[] data, CancellationToken ct)
    {
        var cookie = NextCookie();
        await SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Write, cookie, offset, (uint)data.Length), data, ct);
        var reply = await ReadReplyAsync(ct);
        if (reply.Cookie != cookie || reply.Error != NbdError.None)
        {
            throw new InvalidOperationException($"WRITE answered cookie {reply.Cookie} error {reply.Error}");
        }
    }

    public async Task<byte[]> ReadAsync(ulong offset, int length, CancellationToken ct)
    {
        var cookie = NextCookie();
        await SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, cookie, offset, (uint)length), ct);
        var reply = await ReadReplyAsync(ct, length);
        if (reply.Cookie != cookie || reply.Error != NbdError.None)
        {
            throw new InvalidOperationException($"READ answered cookie {reply.Cookie} error {reply.Error}");
        }

        if (!reply.IsStructured)
        {
            return reply.Payload;
        }

        if (reply.Chunk!.Value.Type == NbdReplyChunkType.None)
        {
            return [];
        }

        if (reply.Chunk.Value.Type != NbdReplyChunkType.OffsetData || !reply.Chunk.Value.Flags.HasFlag(NbdReplyFlags.Done))
        {
            throw new InvalidOperationException($"READ answered with a {reply.Chunk.Value.Type} chunk");
        }

        return reply.Payload[8..];
    }

    /// <summary>Writes a random block and reads it back; proves this connection still works end to end.</summary>
    public async Task RoundTripAsync(CancellationToken ct, ulong offset = 4096 * 7)
    {
        var data = new byte[8192];
        Random.Shared.NextBytes(data);
        await WriteAsync(offset, data, ct);
        var back = await ReadAsync(offset, data.Length, ct);
        if (!back.AsSpan().SequenceEqual(data))
        {
            throw new InvalidOperationException("round trip returned different data");
        }
    }

    /// <summary>
    /// Reads until the server closes the connection (EOF or reset) and returns what it sent before closing;
    /// throws <see cref="TimeoutException"/> if it is still open after <paramref name="timeout"/>.
    /// </summary>
    public async Task<byte[]> ReadUntilClosedAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await _stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    return received.ToArray();
                }

                received.Write(buffer, 0, n);
            }
        }
        catch (IOException ex) when (ex.InnerException is SocketException)
        {
            return received.ToArray();
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"the server did not close the connection within {timeout} (received {received.Length} bytes)");
        }
    }

    public void Shutdown() => _socket.Shutdown(SocketShutdown.Send);

    public async Task<byte[]> ReadExactAsync(int count, CancellationToken ct)
    {
        var bytes = new byte[count];
        await _stream.ReadExactlyAsync(bytes, ct);
        return bytes;
    }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}
