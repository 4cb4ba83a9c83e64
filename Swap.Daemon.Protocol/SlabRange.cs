using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>
/// Body of READ, WRITE and TRIM (u32 slab id, u32 epoch, u64 offset, u32 length: 20 bytes) and, without offset and
/// length, of FREE_SLAB and EVICTED (8 bytes).
/// </summary>
public readonly record struct SlabRange(uint SlabId, uint Epoch, ulong Offset, uint Length)
{
    public const int Size = 20;
    public const int SlabOnlySize = 8;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, SlabId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Epoch);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }

    public void WriteSlabOnly(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, SlabId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Epoch);
    }

    /// <summary>Reads a 20-byte range body; throws if the frame's body is too short for it.</summary>
    public static SlabRange Read(ReadOnlySpan<byte> body)
    {
        if (body.Length < Size)
        {
            DaemonProtocolException.Throw($"slab range body of {body.Length} bytes, need {Size}");
        }

        return new SlabRange(
            BinaryPrimitives.ReadUInt32BigEndian(body),
            BinaryPrimitives.ReadUInt32BigEndian(body[4..]),
            BinaryPrimitives.ReadUInt64BigEndian(body[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(body[16..]));
    }

    public static SlabRange ReadSlabOnly(ReadOnlySpan<byte> body)
    {
        if (body.Length < SlabOnlySize)
        {
            DaemonProtocolException.Throw($"slab body of {body.Length} bytes, need {SlabOnlySize}");
        }

        return new SlabRange(BinaryPrimitives.ReadUInt32BigEndian(body), BinaryPrimitives.ReadUInt32BigEndian(body[4..]), 0, 0);
    }

    /// <summary>True if the range lies inside a slab of <paramref name="slabSize"/> bytes (overflow-safe).</summary>
    public bool FitsIn(ulong slabSize) => Offset <= slabSize && Length <= slabSize - Offset;
}
