using System.Numerics;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The device's slabs: their geometry, each slab's current <see cref="SlabMapping"/> and <see cref="SlabPlacement"/>,
/// the pages written to the backup disk, and the writes in progress per slab. Every per-slab field changes by an
/// atomic read, write or compare-exchange; nothing here takes a lock.
/// </summary>
internal sealed class SlabTable
{
    public const int PageShift = 12;
    public const int PageSize = 1 << PageShift;

    private readonly int _slabShift;
    private readonly long _slabSize;
    private readonly SlabMapping?[] _map;
    private readonly int[] _placement;

    public SlabTable(long size, long slabSize)
    {
        _slabSize = slabSize;
        _slabShift = BitOperations.Log2((ulong)slabSize);
        PagesPerSlab = slabSize >> PageShift;
        var slabs = (int)((size + slabSize - 1) >> _slabShift);
        _map = new SlabMapping?[slabs];
        _placement = new int[slabs];
        Writers = new SlabWriters(slabs);
        OnDisk = new PageBitmap((size + PageSize - 1) >> PageShift);
        Unsent = new UnsentWrites(OnDisk.Pages);
    }

    public int Count => _map.Length;

    public long PagesPerSlab { get; }

    /// <summary>Pages written to the backup disk (and not trimmed since): the pages that have data.</summary>
    public PageBitmap OnDisk { get; }

    public SlabWriters Writers { get; }

    /// <summary>Per page, the acknowledged writes still waiting in a link's queue.</summary>
    public UnsentWrites Unsent { get; }

    public int SlabOf(long offset) => (int)(offset >> _slabShift);

    public long BaseOf(int slab) => (long)slab << _slabShift;

    /// <summary>Bytes from <paramref name="offset"/> to the end of its slab, at most <paramref name="length"/>.</summary>
    public int PieceLength(long offset, long length) => (int)Math.Min(length, _slabSize - (offset & (_slabSize - 1)));

    /// <summary>The slab's pages (the last slab may be short).</summary>
    public long PagesIn(int slab) => Math.Min(PagesPerSlab, OnDisk.Pages - ((long)slab * PagesPerSlab));

    public bool HasData(int slab) => OnDisk.Any((long)slab * PagesPerSlab, PagesIn(slab));

    /// <summary>The slab's current mapping, or null while it lives on the disk only.</summary>
    public SlabMapping? Mapping(int slab) => Volatile.Read(ref _map[slab]);

    /// <summary>Publishes a new mapping for the slab and marks it placed.</summary>
    public void Publish(int slab, SlabMapping mapping)
    {
        Volatile.Write(ref _map[slab], mapping);
        Volatile.Write(ref _placement[slab], (int)SlabPlacement.Placed);
    }

    /// <summary>Takes the mapping out of the table if it is still the slab's current one; false if it was not.</summary>
    public bool TryRemove(int slab, SlabMapping mapping) => Interlocked.CompareExchange(ref _map[slab], null, mapping) == mapping;

    public SlabPlacement Placement(int slab) => (SlabPlacement)Volatile.Read(ref _placement[slab]);

    public void SetPlacement(int slab, SlabPlacement placement) => Volatile.Write(ref _placement[slab], (int)placement);

    /// <summary>Moves the slab from <paramref name="from"/> to <paramref name="to"/>; false if it was not in <paramref name="from"/>.</summary>
    public bool TryMove(int slab, SlabPlacement from, SlabPlacement to) =>
        Interlocked.CompareExchange(ref _placement[slab], (int)to, (int)from) == (int)from;
}
