using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>One base:allocation extent from a BLOCK_STATUS reply; extents follow each other from the request offset.</summary>
public readonly record struct NbdExtent(uint Length, NbdAllocationState State)
{
    public bool IsHole => State.HasFlag(NbdAllocationState.Hole);
    public bool IsZero => State.HasFlag(NbdAllocationState.Zero);
}
