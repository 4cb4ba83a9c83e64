using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// One acknowledged write piece on its way to its daemon, without a task: queued in the link's
/// <see cref="WriteBehind"/>, sent by its send thread, and settled by a continuation on the link's receive thread.
/// Its pages count in <see cref="UnsentWrites"/> until the frame has its place in the link's order. Pooled by
/// <see cref="RemoteWrites"/>.
/// </summary>
internal sealed class RemoteWrite : IQueuedWrite
{
    private readonly RemoteWrites _owner;
    private readonly Action _onReply;
    private PendingPiece _piece;
    private ValueTask<DaemonReply> _reply;
    private int _counted;

    public RemoteWrite(RemoteWrites owner)
    {
        _owner = owner;
        _onReply = OnReply;
    }

    public bool Wanted => _piece.Mapping is { Active: true };

    /// <summary>Takes the piece, whose pages the caller has counted as unsent.</summary>
    public void Prepare(in PendingPiece piece)
    {
        _piece = piece;
        // Never placed in the order (a send that failed first): no reply can make its pages valid.
        _piece.FillSequence = -1;
        Volatile.Write(ref _counted, 1);
    }

    public void InFifo()
    {
        // A fill frame is placed between two bumps of the sequence: odd means one is under way and may land after this.
        var sequence = Interlocked.Read(ref _piece.Mapping!.FillSequence);
        _piece.FillSequence = (sequence & 1) == 0 ? sequence : -1;
        Uncount();
    }

    public void Sent(ValueTask<DaemonReply> reply)
    {
        _reply = reply;
        var awaiter = reply.ConfigureAwait(false).GetAwaiter();
        if (awaiter.IsCompleted)
        {
            OnReply();
        }
        else
        {
            awaiter.UnsafeOnCompleted(_onReply);
        }
    }

    public void Dropped()
    {
        Uncount();
        var piece = _piece;
        _piece = default;
        _owner.Return(this);
        _owner.Settle(piece, null);
    }

    private void Uncount()
    {
        if (Interlocked.Exchange(ref _counted, 0) != 0)
        {
            _owner.Uncount(_piece);
        }
    }

    private void OnReply()
    {
        // A send that failed before the frame had its place never said InFifo.
        Uncount();
        var piece = _piece;
        var pending = _reply;
        _piece = default;
        _reply = default;
        DaemonReply? reply;
        try
        {
            reply = pending.ConfigureAwait(false).GetAwaiter().GetResult();
        }
        catch (DaemonLinkException)
        {
            reply = null;
        }

        _owner.Return(this);
        _owner.Settle(piece, reply);
    }
}
