namespace Swap.Slabs.Mapping;

/// <summary>Life of a <see cref="SlabMapping"/>.</summary>
internal enum SlabState
{
    /// <summary>Granted; pages on disk are being copied to the daemon; writes go to disk only.</summary>
    Filling,
    /// <summary>Writes go to the daemon and the disk.</summary>
    Active,
    /// <summary>Unmapped (daemon lost, evicted, stale); reads and writes use the disk.</summary>
    Dead,
}
