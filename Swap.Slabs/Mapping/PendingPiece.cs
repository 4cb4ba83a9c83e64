using Swap.BlockDevices;

namespace Swap.Slabs.Mapping;

/// <summary>A write piece (one slab's part of a write, or one frame of it) between its disk write and the daemon's answer.</summary>
internal struct PendingPiece
{
    public int Slab;
    public long FirstPage;
    public long Pages;
    public SlabMapping? Mapping;
    /// <summary>The mapping's fill sequence when the frame took its place in the link's order (-1: a fill frame was under way then).</summary>
    public long FillSequence;

    /// <summary>The mapping's discard sequence when the piece was queued.</summary>
    public long DiscardSequence;

    /// <summary>The <see cref="SlabWriters"/> generation a queued piece counts in until it is settled.</summary>
    public int Generation;
    public BlockDeviceException? DiskError;
}
