using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>ALLOC_SLAB request body: u64 slab size, u32 the server's slab index (12 bytes).</summary>
public readonly record struct SlabAllocRequest(ulong SlabSize, uint ServerSlabIndex)
{
    public const int Size = 12;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, SlabSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], ServerSlabIndex);
    }

    public static SlabAllocRequest Read(ReadOnlySpan<byte> body)
    {
        if (body.Length < Size)
        {
            DaemonProtocolException.Throw($"ALLOC_SLAB body of {body.Length} bytes, need {Size}");
        }

        return new SlabAllocRequest(BinaryPrimitives.ReadUInt64BigEndian(body), BinaryPrimitives.ReadUInt32BigEndian(body[8..]));
    }
}

/// <summary>ALLOC_SLAB reply body: u32 slab id, u32 epoch (8 bytes); the pair names the slab in every later request.</summary>
public readonly record struct SlabGrant(uint SlabId, uint Epoch)
{
    public const int Size = 8;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, SlabId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Epoch);
    }

    public static SlabGrant Read(ReadOnlySpan<byte> body)
    {
        if (body.Length < Size)
        {
            DaemonProtocolException.Throw($"ALLOC_SLAB reply of {body.Length} bytes, need {Size}");
        }

        return new SlabGrant(BinaryPrimitives.ReadUInt32BigEndian(body), BinaryPrimitives.ReadUInt32BigEndian(body[4..]));
    }
}
