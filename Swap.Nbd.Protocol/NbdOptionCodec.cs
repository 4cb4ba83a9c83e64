using System.Buffers.Binary;
using System.Text;

namespace Swap.Nbd.Protocol;

/// <summary>Codec for option requests, option replies and the payloads of INFO/GO/LIST/META_CONTEXT.</summary>
public static class NbdOptionCodec
{
    /// <summary>Longest string the spec allows in any option field.</summary>
    public const int MaxStringLength = 4096;

    public static bool TryReadHeader(ReadOnlySpan<byte> source, out NbdOptionHeader header)
    {
        header = default;
        if (source.Length < NbdOptionHeader.Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.IHaveOpt)
        {
            NbdProtocolException.Throw("option request does not start with IHAVEOPT");
        }

        header = new NbdOptionHeader(
            (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[12..]));
        return true;
    }

    public static void WriteHeader(Span<byte> destination, NbdOption option, uint length)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.IHaveOpt);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], length);
    }

    public static void WriteReplyHeader(Span<byte> destination, NbdOption option, NbdOptionReplyType type, uint length)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.OptionReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], length);
    }

    public static bool TryReadReplyHeader(ReadOnlySpan<byte> source, out NbdOptionReplyHeader header)
    {
        header = default;
        if (source.Length < NbdOptionReplyHeader.Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.OptionReply)
        {
            NbdProtocolException.Throw("option reply has a bad magic");
        }

        header = new NbdOptionReplyHeader(
            (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(source[12..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..]));
        return true;
    }

    /// <summary>NBD_INFO_EXPORT payload (type, u64 size, u16 flags): 12 bytes.</summary>
    public static int WriteInfoExport(Span<byte> destination, ulong size, NbdTransmissionFlags flags)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], size);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], (ushort)flags);
        return 12;
    }

    /// <summary>NBD_INFO_BLOCK_SIZE payload (type, u32 min, u32 preferred, u32 max): 14 bytes.</summary>
    public static int WriteInfoBlockSize(Span<byte> destination, uint minimum, uint preferred, uint maximum)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], minimum);
        BinaryPrimitives.WriteUInt32BigEndian(destination[6..], preferred);
        BinaryPrimitives.WriteUInt32BigEndian(destination[10..], maximum);
        return 14;
    }

    /// <summary>NBD_INFO_NAME or NBD_INFO_DESCRIPTION payload: type then the UTF-8 text.</summary>
    public static int WriteInfoString(Span<byte> destination, NbdInfoType type, string text)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)type);
        return 2 + Encoding.UTF8.GetBytes(text, destination[2..]);
    }

    /// <summary>NBD_REP_SERVER payload for OPT_LIST: u32 name length, name, description.</summary>
    public static int WriteServerEntry(Span<byte> destination, string name, string description)
    {
        var nameLength = Encoding.UTF8.GetBytes(name, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)nameLength);
        return 4 + nameLength + Encoding.UTF8.GetBytes(description, destination[(4 + nameLength)..]);
    }

    /// <summary>NBD_REP_META_CONTEXT payload: u32 context id, name.</summary>
    public static int WriteMetaContext(Span<byte> destination, uint contextId, string name)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, contextId);
        return 4 + Encoding.UTF8.GetBytes(name, destination[4..]);
    }

    /// <summary>
    /// Parses OPT_INFO / OPT_GO data: u32 name length, name, u16 count, count × u16 info types.
    /// Returns false when the lengths are inconsistent (the server answers ERR_INVALID).
    /// </summary>
    public static bool TryParseInfoRequest(ReadOnlySpan<byte> data, out string exportName, out NbdInfoRequests requests)
    {
        exportName = string.Empty;
        requests = default;
        if (data.Length < 6)
        {
            return false;
        }

        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > MaxStringLength || nameLength > (uint)(data.Length - 6))
        {
            return false;
        }

        if (!TryDecodeString(data.Slice(4, (int)nameLength), out exportName))
        {
            return false;
        }

        var rest = data[(4 + (int)nameLength)..];
        var count = BinaryPrimitives.ReadUInt16BigEndian(rest);
        if (rest.Length != 2 + (count * 2))
        {
            return false;
        }

        for (var i = 0; i < count; i++)
        {
            requests = requests.With((NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(rest[(2 + (i * 2))..]));
        }

        return true;
    }

    /// <summary>Writes OPT_INFO / OPT_GO data; returns the number of bytes.</summary>
    public static int WriteInfoRequest(Span<byte> destination, string exportName, ReadOnlySpan<NbdInfoType> infos)
    {
        var nameLength = Encoding.UTF8.GetBytes(exportName, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)nameLength);
        var at = 4 + nameLength;
        BinaryPrimitives.WriteUInt16BigEndian(destination[at..], (ushort)infos.Length);
        at += 2;
        foreach (var info in infos)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[at..], (ushort)info);
            at += 2;
        }

        return at;
    }

    /// <summary>
    /// Parses LIST/SET_META_CONTEXT data: u32 name length, name, u32 query count, count × (u32 length, query).
    /// Returns false on inconsistent lengths (ERR_INVALID).
    /// </summary>
    public static bool TryParseMetaContextRequest(ReadOnlySpan<byte> data, out string exportName, out List<string> queries)
    {
        exportName = string.Empty;
        queries = [];
        if (data.Length < 8)
        {
            return false;
        }

        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > MaxStringLength || nameLength > (uint)(data.Length - 8))
        {
            return false;
        }

        if (!TryDecodeString(data.Slice(4, (int)nameLength), out exportName))
        {
            return false;
        }

        var rest = data[(4 + (int)nameLength)..];
        var count = BinaryPrimitives.ReadUInt32BigEndian(rest);
        rest = rest[4..];
        for (var i = 0u; i < count; i++)
        {
            if (rest.Length < 4)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt32BigEndian(rest);
            if (length > MaxStringLength || length > (uint)(rest.Length - 4))
            {
                return false;
            }

            if (!TryDecodeString(rest.Slice(4, (int)length), out var query))
            {
                return false;
            }

            queries.Add(query);
            rest = rest[(4 + (int)length)..];
        }

        return rest.IsEmpty;
    }

    /// <summary>Writes LIST/SET_META_CONTEXT data; returns the number of bytes.</summary>
    public static int WriteMetaContextRequest(Span<byte> destination, string exportName, IReadOnlyList<string> queries)
    {
        var nameLength = Encoding.UTF8.GetBytes(exportName, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)nameLength);
        var at = 4 + nameLength;
        BinaryPrimitives.WriteUInt32BigEndian(destination[at..], (uint)queries.Count);
        at += 4;
        foreach (var query in queries)
        {
            var length = Encoding.UTF8.GetBytes(query, destination[(at + 4)..]);
            BinaryPrimitives.WriteUInt32BigEndian(destination[at..], (uint)length);
            at += 4 + length;
        }

        return at;
    }

    /// <summary>Strict UTF-8 without NULs, as the spec defines a string.</summary>
    public static bool TryDecodeString(ReadOnlySpan<byte> bytes, out string text)
    {
        text = string.Empty;
        if (bytes.Contains((byte)0))
        {
            return false;
        }

        try
        {
            text = StrictUtf8.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
