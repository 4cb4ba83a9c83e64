using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Client;

/// <summary>
/// A hand-driven NBD server for one connection: it negotiates, then the test reads requests and writes whatever
/// replies it likes (out of order, split chunks, holes, garbage) to exercise the client's receive loop.
/// </summary>
internal sealed class ScriptedNbdServer : IAsyncDisposable
{
    public const uint ContextId = 7;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private Socket? _socket;

    public ScriptedNbdServer() => _listener.Start();

    public string Uri => $"nbd://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/";
    public NetworkStream Stream { get; private set; } = null!;
    public bool Structured { get; private set; }

    public async Task AcceptAsync(long size, NbdTransmissionFlags flags, CancellationToken ct)
    {
        _socket = await _listener.AcceptSocketAsync(ct);
        Stream = new NetworkStream(_socket, ownsSocket: true);
        var greeting = new byte[NbdHandshake.GreetingSize];
        NbdHandshake.WriteGreeting(greeting, NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        await Stream.WriteAsync(greeting, ct);
        await Stream.ReadExactlyAsync(new byte[4], ct);
        var header = new byte[NbdOptionHeader.Size];
        while (true)
        {
            await Stream.ReadExactlyAsync(header, ct);
            NbdOptionCodec.TryReadHeader(header, out var option);
            await Stream.ReadExactlyAsync(new byte[option.Length], ct);
            switch (option.Option)
            {
                case NbdOption.StructuredReply:
                    Structured = true;
                    await OptionReplyAsync(option.Option, NbdOptionReplyType.Ack, [], ct);
                    break;
                case NbdOption.SetMetaContext:
                    var context = new byte[64];
                    var n = NbdOptionCodec.WriteMetaContext(context, ContextId, "base:allocation");
                    await OptionReplyAsync(option.Option, NbdOptionReplyType.MetaContext, context[..n], ct);
                    await OptionReplyAsync(option.Option, NbdOptionReplyType.Ack, [], ct);
                    break;
                case NbdOption.Go:
                    var info = new byte[12];
                    NbdOptionCodec.WriteInfoExport(info, (ulong)size, flags | NbdTransmissionFlags.HasFlags);
                    await OptionReplyAsync(option.Option, NbdOptionReplyType.Info, info, ct);
                    await OptionReplyAsync(option.Option, NbdOptionReplyType.Ack, [], ct);
                    return;
                default:
                    await OptionReplyAsync(option.Option, NbdOptionReplyType.ErrUnsup, [], ct);
                    break;
            }
        }
    }

    public async Task<NbdRequest> ReadRequestAsync(CancellationToken ct)
    {
        var bytes = new byte[NbdRequest.Size];
        await Stream.ReadExactlyAsync(bytes, ct);
        NbdRequest.TryRead(bytes, out var request);
        if (request.Command == NbdCommand.Write)
        {
            await Stream.ReadExactlyAsync(new byte[request.Length], ct);
        }

        return request;
    }

    public Task SimpleAsync(ulong cookie, NbdError error, byte[]? data, CancellationToken ct)
    {
        var bytes = new byte[NbdSimpleReply.Size + (data?.Length ?? 0)];
        new NbdSimpleReply(error, cookie).Write(bytes);
        data?.CopyTo(bytes, NbdSimpleReply.Size);
        return Stream.WriteAsync(bytes, ct).AsTask();
    }

    public Task ChunkAsync(ulong cookie, NbdReplyChunkType type, bool done, byte[] payload, CancellationToken ct)
    {
        var bytes = new byte[NbdStructuredReply.Size + payload.Length];
        new NbdStructuredReply(done ? NbdReplyFlags.Done : NbdReplyFlags.None, type, cookie, (uint)payload.Length).Write(bytes);
        payload.CopyTo(bytes, NbdStructuredReply.Size);
        return Stream.WriteAsync(bytes, ct).AsTask();
    }

    public static byte[] OffsetData(ulong offset, byte[] data)
    {
        var payload = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(payload, offset);
        data.CopyTo(payload, 8);
        return payload;
    }

    public static byte[] OffsetHole(ulong offset, uint length)
    {
        var payload = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(payload, offset);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8), length);
        return payload;
    }

    public static byte[] ErrorPayload(NbdError error, string message)
    {
        var text = Encoding.UTF8.GetBytes(message);
        var payload = new byte[6 + text.Length];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)error);
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(4), (ushort)text.Length);
        text.CopyTo(payload, 6);
        return payload;
    }

    public async ValueTask DisposeAsync()
    {
        if (Stream is not null)
        {
            await Stream.DisposeAsync();
        }

        _listener.Dispose();
    }

    private Task OptionReplyAsync(NbdOption option, NbdOptionReplyType type, byte[] data, CancellationToken ct)
    {
        var bytes = new byte[NbdOptionReplyHeader.Size + data.Length];
        NbdOptionCodec.WriteReplyHeader(bytes, option, type, (uint)data.Length);
        data.CopyTo(bytes, NbdOptionReplyHeader.Size);
        return Stream.WriteAsync(bytes, ct).AsTask();
    }
}
