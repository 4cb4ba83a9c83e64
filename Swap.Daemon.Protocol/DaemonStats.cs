using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>
/// STATS reply body: u64 bytes lent, u64 host MemAvailable, u32 slabs mapped, u32 free slabs (24 bytes).
/// QUERY_FREE's reply is the last field alone (<see cref="WriteFreeSlabs"/>).
/// </summary>
public readonly record struct DaemonStats(ulong BytesLent, ulong MemAvailable, uint SlabsMapped, uint FreeSlabs)
{
    public const int Size = 24;
    public const int FreeSlabsSize = 4;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, BytesLent);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], MemAvailable);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], SlabsMapped);
        BinaryPrimitives.WriteUInt32BigEndian(destination[20..], FreeSlabs);
    }

    public static DaemonStats Read(ReadOnlySpan<byte> body)
    {
        if (body.Length < Size)
        {
            DaemonProtocolException.Throw($"STATS reply of {body.Length} bytes, need {Size}");
        }

        return new DaemonStats(
            BinaryPrimitives.ReadUInt64BigEndian(body),
            BinaryPrimitives.ReadUInt64BigEndian(body[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(body[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(body[20..]));
    }

    /// <summary>QUERY_FREE reply body: u32 free slabs.</summary>
    public static void WriteFreeSlabs(Span<byte> destination, uint freeSlabs) => BinaryPrimitives.WriteUInt32BigEndian(destination, freeSlabs);

    public static uint ReadFreeSlabs(ReadOnlySpan<byte> body)
    {
        if (body.Length < FreeSlabsSize)
        {
            DaemonProtocolException.Throw($"QUERY_FREE reply of {body.Length} bytes, need {FreeSlabsSize}");
        }

        return BinaryPrimitives.ReadUInt32BigEndian(body);
    }
}
