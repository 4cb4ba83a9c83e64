using System.Buffers.Binary;

namespace Swap.Nbd.Protocol;

/// <summary>A simple reply header (16 bytes), followed by data only for a successful READ.</summary>
public readonly record struct NbdSimpleReply(NbdError Error, ulong Cookie)
{
    public const int Size = 16;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.SimpleReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)Error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
    }

    /// <summary>Reads the header after the caller has checked the magic is the simple-reply magic.</summary>
    public static NbdSimpleReply Read(ReadOnlySpan<byte> source) => new(
        (NbdError)BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
        BinaryPrimitives.ReadUInt64BigEndian(source[8..]));
}
