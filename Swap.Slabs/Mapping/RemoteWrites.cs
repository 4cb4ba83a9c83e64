using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Queues acknowledged write pieces on their daemon's link (<see cref="WriteBehind"/>) and settles them when the
/// daemon answers: an OK makes the pages valid there (where no newer write of them still waits:
/// <see cref="UnsentWrites"/>), anything else unmaps the slab. The waiting is done by pooled <see cref="RemoteWrite"/>
/// trackers, so a write allocates nothing once the pool has as many trackers as writes are ever queued at once.
/// </summary>
internal sealed class RemoteWrites
{
    /// <summary>Trackers made at start: as many pieces as one link's queue holds (more are made if ever needed).</summary>
    private const int InitialTrackers = WriteBehind.MaxEntries;

    private readonly SlabTable _table;
    private readonly SlabPlacer _placer;
    private readonly Lock _lock = new();
    private readonly Stack<RemoteWrite> _trackers = new(InitialTrackers);
    private long _queueFull;

    public RemoteWrites(SlabTable table, SlabPlacer placer)
    {
        _table = table;
        _placer = placer;
        for (var i = 0; i < InitialTrackers; i++)
        {
            _trackers.Push(new RemoteWrite(this));
        }
    }

    /// <summary>Pieces that found their link's queue full (or a page with 255 writes waiting) and stayed on the disk only.</summary>
    public long QueueFull => Interlocked.Read(ref _queueFull);

    /// <summary>
    /// Reserves room in the link's queue for a piece of <paramref name="length"/> payload bytes; false (counted) when
    /// there is none. On true, fill <paramref name="payload"/> and call <see cref="Commit"/> or <see cref="Cancel"/>.
    /// </summary>
    public bool TryReserve(SlabMapping mapping, int length, out long ticket, out Span<byte> payload)
    {
        if (mapping.Link.WriteBehind.TryReserve(length, out ticket, out payload))
        {
            return true;
        }

        Interlocked.Increment(ref _queueFull);
        return false;
    }

    /// <summary>
    /// Queues the filled entry as the piece's remote copy at <paramref name="remoteOffset"/> of its slab, counting its
    /// pages as unsent; false (the entry given up, the pages disk-only) when a page has too many writes waiting.
    /// </summary>
    public bool Commit(in PendingPiece piece, long ticket, long remoteOffset)
    {
        var mapping = piece.Mapping!;
        if (!_table.Unsent.TryAdd(GlobalPage(piece), piece.Pages))
        {
            mapping.Link.WriteBehind.Cancel(ticket);
            Interlocked.Increment(ref _queueFull);
            return false;
        }

        RemoteWrite? tracker;
        lock (_lock)
        {
            _trackers.TryPop(out tracker);
        }

        tracker ??= new RemoteWrite(this);
        // Counted as a write in progress on its slab until it is settled: a fill waits for it (SlabWriters.DrainAsync)
        // and copies its pages if its reply could not make them valid.
        var queued = piece;
        queued.Generation = _table.Writers.Enter(piece.Slab);
        tracker.Prepare(queued);
        mapping.Link.WriteBehind.Commit(ticket, mapping.Grant, remoteOffset, tracker);
        return true;
    }

    public static void Cancel(SlabMapping mapping, long ticket) => mapping.Link.WriteBehind.Cancel(ticket);

    public void Return(RemoteWrite tracker)
    {
        lock (_lock)
        {
            _trackers.Push(tracker);
        }
    }

    /// <summary>The piece's frame has its place in its link's order (or never will): its pages stop counting as unsent.</summary>
    public void Uncount(in PendingPiece piece) => _table.Unsent.Remove(GlobalPage(piece), piece.Pages);

    /// <summary>
    /// The daemon's answer to a piece (null: the link failed or the piece never left): an OK makes the pages valid
    /// there unless the disk write failed, a fill write may have landed after this one (the fill sequence moved since
    /// the frame took its place in the order, or a fill frame was under way then) or a discard left ahead of it;
    /// anything else unmaps the slab.
    /// </summary>
    public void Settle(in PendingPiece piece, DaemonReply? reply)
    {
        try
        {
            SettleReply(piece, reply);
        }
        finally
        {
            _table.Writers.Exit(piece.Slab, piece.Generation);
        }
    }

    private void SettleReply(in PendingPiece piece, DaemonReply? reply)
    {
        var mapping = piece.Mapping!;
        if (reply is not { } answer)
        {
            // The page is on disk and not valid remotely; the daemon pool unmaps the slab of a failed link.
        }
        else if (!answer.Ok)
        {
            _placer.Unmap(piece.Slab, mapping, $"daemon answered {answer.Status} to a write");
        }
        else if (piece.DiskError is null && Interlocked.Read(ref mapping.FillSequence) == piece.FillSequence
            && Interlocked.Read(ref mapping.DiscardSequence) == piece.DiscardSequence)
        {
            mapping.SetValid(piece.FirstPage, piece.Pages, _table.Unsent, GlobalPage(piece) - piece.FirstPage);
        }
    }

    private long GlobalPage(in PendingPiece piece) => ((long)piece.Slab * _table.PagesPerSlab) + piece.FirstPage;
}
