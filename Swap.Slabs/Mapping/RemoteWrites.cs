using Swap.Common.Buffers;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Settles acknowledged write pieces when their daemon answers: an OK makes the pages valid there, anything else
/// unmaps the slab. The waiting is done by pooled <see cref="RemoteWrite"/> trackers, so a write allocates nothing
/// once the pool has as many trackers as writes are ever in flight at once.
/// </summary>
internal sealed class RemoteWrites(SlabPlacer placer)
{
    private readonly Lock _lock = new();
    private readonly Stack<RemoteWrite> _trackers = new();

    /// <summary>Hands a sent piece to a pooled <see cref="RemoteWrite"/>, which settles it when the daemon answers.</summary>
    public void Track(in PendingPiece piece)
    {
        RemoteWrite? tracker;
        lock (_lock)
        {
            _trackers.TryPop(out tracker);
        }

        (tracker ?? new RemoteWrite(this)).Track(piece);
    }

    public void Return(RemoteWrite tracker)
    {
        lock (_lock)
        {
            _trackers.Push(tracker);
        }
    }

    /// <summary>
    /// The daemon's answer to a piece (null: the link failed): an OK makes the pages valid there unless the disk write
    /// failed or a fill write may have overtaken this one; anything else unmaps the slab.
    /// </summary>
    public void Settle(in PendingPiece piece, DaemonReply? reply)
    {
        try
        {
            var mapping = piece.Mapping!;
            if (reply is not { } answer)
            {
                // The page is on disk and not valid remotely; the daemon pool unmaps the slab.
            }
            else if (!answer.Ok)
            {
                placer.Unmap(piece.Slab, mapping, $"daemon answered {answer.Status} to a write");
            }
            else if (piece.DiskError is null && Interlocked.Read(ref mapping.FillSequence) == piece.FillSequence)
            {
                mapping.Valid.Set(piece.FirstPage, piece.Pages);
            }
        }
        finally
        {
            if (piece.Edge is not null)
            {
                PinnedBufferPool.Shared.Return(piece.Edge);
            }
        }
    }
}
