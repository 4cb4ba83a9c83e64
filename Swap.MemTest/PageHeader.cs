namespace Swap.MemTest;

/// <summary>The header words a page holds: which seed, page and version its data belongs to, if any.</summary>
public readonly record struct PageHeader(bool HasMagic, ulong Seed, long Index, uint Version);
