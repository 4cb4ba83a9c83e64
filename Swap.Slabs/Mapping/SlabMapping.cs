using Swap.Slabs.Remote;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Mapping;

/// <summary>
/// One placement of one slab on one daemon link. It is never reused: when the slab moves, a new mapping with empty
/// bitmaps replaces it, so a late completion that sets bits on an old mapping is harmless.
/// </summary>
internal sealed class SlabMapping
{
    private readonly Lock _bits = new();
    private int _state;
    private int _openFailed;

    public SlabMapping(DaemonEndpoint daemon, DaemonLink link, SlabGrant grant, long pages)
    {
        Daemon = daemon;
        Link = link;
        Grant = grant;
        Valid = new PageBitmap(pages);
        Touched = new PageBitmap(pages);
    }

    public DaemonEndpoint Daemon { get; }

    public DaemonLink Link { get; }

    public SlabGrant Grant { get; }

    /// <summary>Pages whose current contents are on the daemon.</summary>
    public PageBitmap Valid { get; }

    /// <summary>Pages written while the slab was being filled from disk.</summary>
    public PageBitmap Touched { get; }

    public SlabState State => (SlabState)Volatile.Read(ref _state);

    /// <summary>Writes take the remote path only when this is true.</summary>
    public bool Active => State == SlabState.Active && Link.IsAlive;

    public bool Usable => State != SlabState.Dead && Link.IsAlive;

    public void Activate() => Interlocked.CompareExchange(ref _state, (int)SlabState.Active, (int)SlabState.Filling);

    /// <summary>False if it was dead already.</summary>
    public bool Kill() => Interlocked.Exchange(ref _state, (int)SlabState.Dead) != (int)SlabState.Dead;

    /// <summary>True for the first page of this mapping that fails to open: a slab counts once against its daemon.</summary>
    public bool MarkOpenFailed() => Interlocked.Exchange(ref _openFailed, 1) == 0;

    /// <summary>
    /// Bumped before and after every fill write is sent, so it is odd while one is under way: a write whose reply
    /// arrives after a fill write was placed behind it cannot tell which landed last.
    /// </summary>
    public long FillSequence;

    /// <summary>
    /// Bumped when a TRIM or WRITE_ZEROES leaves ahead of an older write still in the link's queue: that write's reply
    /// cannot make its pages valid (the daemon applies it after the discard).
    /// </summary>
    public long DiscardSequence;

    /// <summary>
    /// Called before any write to the pages: they are no longer valid on the daemon (until the write's own remote
    /// copy is acknowledged), and a fill copying them from the disk right now must not mark them valid.
    /// </summary>
    public void Invalidate(long first, long count)
    {
        lock (_bits)
        {
            Touched.Set(first, count);
            Valid.Clear(first, count);
        }
    }

    /// <summary>
    /// The fill copied these pages: valid unless a write touched them since the copy began or a write of them still
    /// waits to be sent (<paramref name="slabFirstPage"/>: the slab's first page in <paramref name="unsent"/>).
    /// </summary>
    public void Filled(long first, long count, UnsentWrites unsent, long slabFirstPage)
    {
        lock (_bits)
        {
            var page = first;
            var end = first + count;
            while (page < end)
            {
                var touched = Touched.NextDifferent(page, end, value: false);
                unsent.MarkIdle(Valid, page, touched, slabFirstPage);
                page = Touched.NextDifferent(touched, end, value: true);
            }
        }
    }

    /// <summary>A write's reply: its pages are valid, except those a newer write still waits to send (see <see cref="UnsentWrites"/>).</summary>
    public void SetValid(long first, long count, UnsentWrites unsent, long slabFirstPage)
    {
        lock (_bits)
        {
            unsent.MarkIdle(Valid, first, first + count, slabFirstPage);
        }
    }

    public void BeginFill(long first, long count)
    {
        lock (_bits)
        {
            Touched.Clear(first, count);
        }
    }
}
