namespace Swap.BlockDevices;

/// <summary>A run of bytes with one allocation state (NBD base:allocation).</summary>
public readonly record struct AllocationExtent(long Length, bool Hole, bool Zero);
