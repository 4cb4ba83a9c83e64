using System.Buffers.Binary;

namespace Swap.Nbd.Protocol;

/// <summary>A structured reply chunk header (20 bytes), followed by Length bytes of payload.</summary>
public readonly record struct NbdStructuredReply(NbdReplyFlags Flags, NbdReplyChunkType Type, ulong Cookie, uint Length)
{
    public const int Size = 20;
    /// <summary>OFFSET_DATA chunk: header plus the u64 offset that precedes the data.</summary>
    public const int OffsetDataPrefixSize = Size + 8;
    /// <summary>ERROR chunk without a message: header, u32 error, u16 message length.</summary>
    public const int ErrorSize = Size + 6;
    /// <summary>BLOCK_STATUS chunk prefix: header and u32 context id.</summary>
    public const int BlockStatusPrefixSize = Size + 4;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }

    /// <summary>Reads the header after the caller has checked the magic is the structured-reply magic.</summary>
    public static NbdStructuredReply Read(ReadOnlySpan<byte> source) => new(
        (NbdReplyFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
        (NbdReplyChunkType)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
        BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
        BinaryPrimitives.ReadUInt32BigEndian(source[16..]));

    /// <summary>Writes an OFFSET_DATA chunk header and offset; the caller appends dataLength bytes.</summary>
    public static void WriteOffsetDataPrefix(Span<byte> destination, NbdReplyFlags flags, ulong cookie, ulong offset, uint dataLength)
    {
        new NbdStructuredReply(flags, NbdReplyChunkType.OffsetData, cookie, dataLength + 8).Write(destination);
        BinaryPrimitives.WriteUInt64BigEndian(destination[Size..], offset);
    }

    /// <summary>Writes a final ERROR chunk with no message (26 bytes).</summary>
    public static void WriteError(Span<byte> destination, ulong cookie, NbdError error)
    {
        new NbdStructuredReply(NbdReplyFlags.Done, NbdReplyChunkType.Error, cookie, 6).Write(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination[Size..], (uint)error);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(Size + 4)..], 0);
    }

    /// <summary>Writes a final BLOCK_STATUS chunk header for extentCount descriptors; descriptors follow (8 bytes each).</summary>
    public static void WriteBlockStatusPrefix(Span<byte> destination, ulong cookie, uint contextId, int extentCount)
    {
        new NbdStructuredReply(NbdReplyFlags.Done, NbdReplyChunkType.BlockStatus, cookie, (uint)(4 + (extentCount * 8))).Write(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination[Size..], contextId);
    }

    public static void WriteExtent(Span<byte> destination, uint length, NbdAllocationState state)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)state);
    }
}
