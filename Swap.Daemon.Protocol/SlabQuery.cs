using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>QUERY_FREE request body: u64 the slab size to count free slabs in (8 bytes).</summary>
public readonly record struct SlabQuery(ulong SlabSize)
{
    public const int Size = 8;

    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt64BigEndian(destination, SlabSize);

    public static SlabQuery Read(ReadOnlySpan<byte> body)
    {
        if (body.Length < Size)
        {
            DaemonProtocolException.Throw($"QUERY_FREE body of {body.Length} bytes, need {Size}");
        }

        return new SlabQuery(BinaryPrimitives.ReadUInt64BigEndian(body));
    }
}
