using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>The fixed part of a request, encoded by <see cref="FrameSender"/> under its send lock according to the opcode.</summary>
internal readonly record struct DaemonRequestBody(SlabRange Range, SlabAllocRequest Alloc, ulong SlabSize)
{
    public static int Length(DaemonOpcode opcode) => opcode switch
    {
        DaemonOpcode.Read or DaemonOpcode.Write or DaemonOpcode.Trim => SlabRange.Size,
        DaemonOpcode.FreeSlab => SlabRange.SlabOnlySize,
        DaemonOpcode.AllocSlab => SlabAllocRequest.Size,
        DaemonOpcode.QueryFree => 8,
        _ => 0,
    };

    public void Write(DaemonOpcode opcode, Span<byte> destination)
    {
        switch (opcode)
        {
            case DaemonOpcode.Read or DaemonOpcode.Write or DaemonOpcode.Trim:
                Range.Write(destination);
                break;
            case DaemonOpcode.FreeSlab:
                Range.WriteSlabOnly(destination);
                break;
            case DaemonOpcode.AllocSlab:
                Alloc.Write(destination);
                break;
            case DaemonOpcode.QueryFree:
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(destination, SlabSize);
                break;
        }
    }
}
