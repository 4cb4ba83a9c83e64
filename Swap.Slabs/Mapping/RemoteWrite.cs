using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Waits for the daemon's answer to one acknowledged write piece without a task: its continuation runs on the
/// link's receive thread and settles the piece there. Pooled by <see cref="RemoteWrites"/>.
/// </summary>
internal sealed class RemoteWrite
{
    private readonly RemoteWrites _owner;
    private readonly Action _onReply;
    private PendingPiece _piece;

    public RemoteWrite(RemoteWrites owner)
    {
        _owner = owner;
        _onReply = OnReply;
    }

    public void Track(in PendingPiece piece)
    {
        _piece = piece;
        var awaiter = piece.Remote.ConfigureAwait(false).GetAwaiter();
        if (awaiter.IsCompleted)
        {
            OnReply();
        }
        else
        {
            awaiter.UnsafeOnCompleted(_onReply);
        }
    }

    private void OnReply()
    {
        var piece = _piece;
        _piece = default;
        DaemonReply? reply;
        try
        {
            reply = piece.Remote.ConfigureAwait(false).GetAwaiter().GetResult();
        }
        catch (DaemonLinkException)
        {
            reply = null;
        }

        _owner.Return(this);
        _owner.Settle(piece, reply);
    }
}
