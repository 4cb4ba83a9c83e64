namespace Swap.Slabs.Mapping;

/// <summary>Where a slab is in its placement life, as <see cref="SlabTable"/> keeps it (one atomic int per slab).</summary>
internal enum SlabPlacement
{
    /// <summary>On the disk only, and nobody is placing it: the next write to it starts a placement.</summary>
    Unplaced = 0,

    /// <summary>A placement is choosing a daemon or filling it.</summary>
    Placing = 1,

    /// <summary>A mapping is published (filling or active).</summary>
    Placed = 2,

    /// <summary>No daemon could take it; a retry is scheduled (or a daemon joining wakes it).</summary>
    Waiting = 3,
}
