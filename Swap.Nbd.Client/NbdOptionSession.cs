using System.Buffers.Binary;
using System.Text;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>
/// Client side of fixed-newstyle option haggling over a stream. Reads exactly what each reply says, so the stream
/// is positioned at the first transmission byte when haggling ends.
/// </summary>
internal sealed class NbdOptionSession(Stream stream)
{
    /// <summary>Option replies beyond this are treated as hostile rather than buffered.</summary>
    private const int MaxReplyLength = 1024 * 1024;

    private static readonly NbdInfoType[] InfoRequests = [NbdInfoType.Name, NbdInfoType.Description, NbdInfoType.BlockSize];

    private readonly byte[] _header = new byte[NbdOptionReplyHeader.Size];

    public bool NoZeroes { get; private set; }

    public async Task GreetAsync(CancellationToken ct)
    {
        await stream.ReadExactlyAsync(_header.AsMemory(0, NbdHandshake.GreetingSize), ct).ConfigureAwait(false);
        NbdHandshake.TryReadGreeting(_header, out var serverFlags);
        if (!serverFlags.HasFlag(NbdHandshakeFlags.FixedNewstyle))
        {
            NbdProtocolException.Throw("server does not speak fixed newstyle");
        }

        NoZeroes = serverFlags.HasFlag(NbdHandshakeFlags.NoZeroes);
        var clientFlags = NbdClientFlags.FixedNewstyle | (NoZeroes ? NbdClientFlags.NoZeroes : 0);
        var reply = new byte[NbdHandshake.ClientFlagsSize];
        NbdHandshake.WriteClientFlags(reply, clientFlags);
        await stream.WriteAsync(reply, ct).ConfigureAwait(false);
    }

    /// <summary>OPT_STRUCTURED_REPLY; false when the server declines.</summary>
    public async Task<bool> StructuredRepliesAsync(CancellationToken ct)
    {
        await SendAsync(NbdOption.StructuredReply, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        var (header, _) = await ReceiveAsync(NbdOption.StructuredReply, ct).ConfigureAwait(false);
        return header.Type == NbdOptionReplyType.Ack;
    }

    /// <summary>OPT_SET_META_CONTEXT base:allocation; the context id, or null when not selected.</summary>
    public async Task<uint?> SetBaseAllocationAsync(string exportName, CancellationToken ct)
    {
        var data = new byte[16 + (Encoding.UTF8.GetMaxByteCount(exportName.Length)) + 32];
        var length = NbdOptionCodec.WriteMetaContextRequest(data, exportName, ["base:allocation"]);
        await SendAsync(NbdOption.SetMetaContext, data.AsMemory(0, length), ct).ConfigureAwait(false);
        uint? id = null;
        while (true)
        {
            var (header, payload) = await ReceiveAsync(NbdOption.SetMetaContext, ct).ConfigureAwait(false);
            switch (header.Type)
            {
                case NbdOptionReplyType.MetaContext when payload.Length >= 4:
                    if (Encoding.UTF8.GetString(payload, 4, payload.Length - 4) == "base:allocation")
                    {
                        id = BinaryPrimitives.ReadUInt32BigEndian(payload);
                    }

                    break;
                case NbdOptionReplyType.Ack:
                    return id;
                default:
                    if (header.IsError)
                    {
                        // BLOCK_STATUS just stays unavailable; nothing else depends on it.
                        return null;
                    }

                    NbdProtocolException.Throw($"unexpected reply {header.Type} to SET_META_CONTEXT");
                    break;
            }
        }
    }

    /// <summary>
    /// OPT_INFO or OPT_GO asking for name, description and block sizes. Returns null on ERR_UNSUP (caller falls
    /// back); throws <see cref="NbdOptionException"/> on other errors.
    /// </summary>
    public async Task<NbdExportInfo?> InfoAsync(NbdOption option, string exportName, CancellationToken ct)
    {
        var data = new byte[8 + Encoding.UTF8.GetMaxByteCount(exportName.Length) + (InfoRequests.Length * 2)];
        var length = NbdOptionCodec.WriteInfoRequest(data, exportName, InfoRequests);
        await SendAsync(option, data.AsMemory(0, length), ct).ConfigureAwait(false);

        long? size = null;
        NbdTransmissionFlags flags = default;
        string? name = null;
        string? description = null;
        uint? minimum = null, preferred = null, maximum = null;
        while (true)
        {
            var (header, payload) = await ReceiveAsync(option, ct).ConfigureAwait(false);
            if (header.Type == NbdOptionReplyType.Ack)
            {
                if (size is null)
                {
                    NbdProtocolException.Throw($"server acknowledged {option} without NBD_INFO_EXPORT");
                }

                return new NbdExportInfo(name ?? exportName, description, size.Value, flags,
                    minimum ?? NbdExportInfo.DefaultMinimumBlockSize,
                    preferred ?? NbdExportInfo.DefaultPreferredBlockSize,
                    maximum ?? NbdExportInfo.DefaultMaximumPayload,
                    minimum is not null);
            }

            if (header.Type == NbdOptionReplyType.ErrUnsup)
            {
                return null;
            }

            if (header.IsError)
            {
                throw new NbdOptionException(option, header.Type, DecodeMessage(payload));
            }

            if (header.Type != NbdOptionReplyType.Info || payload.Length < 2)
            {
                NbdProtocolException.Throw($"unexpected reply {header.Type} ({payload.Length} bytes) to {option}");
            }

            var info = payload.AsSpan(2);
            switch ((NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(payload))
            {
                case NbdInfoType.Export:
                    if (info.Length != 10)
                    {
                        NbdProtocolException.Throw("NBD_INFO_EXPORT must be 12 bytes");
                    }

                    size = CheckedSize(BinaryPrimitives.ReadUInt64BigEndian(info));
                    flags = (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(info[8..]);
                    break;
                case NbdInfoType.Name:
                    name = DecodeMessage(info.ToArray());
                    break;
                case NbdInfoType.Description:
                    description = DecodeMessage(info.ToArray());
                    break;
                case NbdInfoType.BlockSize:
                    if (info.Length != 12)
                    {
                        NbdProtocolException.Throw("NBD_INFO_BLOCK_SIZE must be 14 bytes");
                    }

                    minimum = BinaryPrimitives.ReadUInt32BigEndian(info);
                    preferred = BinaryPrimitives.ReadUInt32BigEndian(info[4..]);
                    maximum = BinaryPrimitives.ReadUInt32BigEndian(info[8..]);
                    break;
                default:
                    // Servers may send infos nobody asked for; unknown ones are ignored.
                    break;
            }
        }
    }

    /// <summary>OPT_EXPORT_NAME: no option reply, just size and flags (and padding unless NO_ZEROES).</summary>
    public async Task<NbdExportInfo> ExportNameAsync(string exportName, CancellationToken ct)
    {
        await SendAsync(NbdOption.ExportName, Encoding.UTF8.GetBytes(exportName), ct).ConfigureAwait(false);
        var reply = new byte[NbdHandshake.ExportNameReplySize + NbdHandshake.ExportNameReplyPadding];
        var length = NoZeroes ? NbdHandshake.ExportNameReplySize : reply.Length;
        try
        {
            await stream.ReadExactlyAsync(reply.AsMemory(0, length), ct).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            // EXPORT_NAME cannot carry an error; a server that does not have the export hangs up.
            throw new NbdOptionException(NbdOption.ExportName, NbdOptionReplyType.ErrUnknown, "server closed the connection (no such export?)");
        }

        NbdHandshake.TryReadExportNameReply(reply, out var size, out var flags);
        return new NbdExportInfo(exportName, null, CheckedSize(size), flags,
            NbdExportInfo.DefaultMinimumBlockSize, NbdExportInfo.DefaultPreferredBlockSize, NbdExportInfo.DefaultMaximumPayload, false);
    }

    public async Task<List<NbdExportListing>> ListAsync(CancellationToken ct)
    {
        await SendAsync(NbdOption.List, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        var exports = new List<NbdExportListing>();
        while (true)
        {
            var (header, payload) = await ReceiveAsync(NbdOption.List, ct).ConfigureAwait(false);
            if (header.Type == NbdOptionReplyType.Ack)
            {
                return exports;
            }

            if (header.IsError)
            {
                throw new NbdOptionException(NbdOption.List, header.Type, DecodeMessage(payload));
            }

            if (header.Type != NbdOptionReplyType.Server || payload.Length < 4 ||
                BinaryPrimitives.ReadUInt32BigEndian(payload) > (uint)(payload.Length - 4))
            {
                NbdProtocolException.Throw($"malformed reply {header.Type} to OPT_LIST");
            }

            var nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(payload);
            exports.Add(new NbdExportListing(
                Encoding.UTF8.GetString(payload, 4, nameLength),
                Encoding.UTF8.GetString(payload, 4 + nameLength, payload.Length - 4 - nameLength)));
        }
    }

    /// <summary>OPT_ABORT; the server may close without answering, which is fine.</summary>
    public async Task AbortAsync(CancellationToken ct)
    {
        try
        {
            await SendAsync(NbdOption.Abort, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
            await ReceiveAsync(NbdOption.Abort, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or NbdProtocolException)
        {
            // Tolerated by the spec: either side may close after ABORT.
        }
    }

    private async Task SendAsync(NbdOption option, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var buffer = new byte[NbdOptionHeader.Size + data.Length];
        NbdOptionCodec.WriteHeader(buffer, option, (uint)data.Length);
        data.Span.CopyTo(buffer.AsSpan(NbdOptionHeader.Size));
        await stream.WriteAsync(buffer, ct).ConfigureAwait(false);
    }

    private async Task<(NbdOptionReplyHeader Header, byte[] Payload)> ReceiveAsync(NbdOption option, CancellationToken ct)
    {
        await stream.ReadExactlyAsync(_header, ct).ConfigureAwait(false);
        NbdOptionCodec.TryReadReplyHeader(_header, out var header);
        if (header.Option != option)
        {
            NbdProtocolException.Throw($"server answered option {header.Option} while {option} was pending");
        }

        if (header.Length > MaxReplyLength)
        {
            NbdProtocolException.Throw($"option reply of {header.Length} bytes");
        }

        var payload = header.Length == 0 ? [] : new byte[header.Length];
        await stream.ReadExactlyAsync(payload, ct).ConfigureAwait(false);
        return (header, payload);
    }

    private static long CheckedSize(ulong size)
    {
        if (size > long.MaxValue)
        {
            NbdProtocolException.Throw($"export size {size} is too large");
        }

        return (long)size;
    }

    private static string? DecodeMessage(byte[] payload) => payload.Length == 0 ? null : Encoding.UTF8.GetString(payload);
}
