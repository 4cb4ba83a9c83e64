using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

public sealed partial class SwapDevice
{
    private readonly Lock _remoteWritesLock = new();
    private readonly Stack<RemoteWrite> _remoteWrites = new();

    /// <summary>Hands a sent piece to a pooled <see cref="RemoteWrite"/>, which settles it when the daemon answers.</summary>
    private void TrackRemote(in PendingPiece piece)
    {
        RemoteWrite? tracker;
        lock (_remoteWritesLock)
        {
            _remoteWrites.TryPop(out tracker);
        }

        (tracker ?? new RemoteWrite(this)).Track(piece);
    }

    private void ReturnTracker(RemoteWrite tracker)
    {
        lock (_remoteWritesLock)
        {
            _remoteWrites.Push(tracker);
        }
    }

    /// <summary>
    /// Waits for the daemon's answer to one acknowledged write piece without a task: its continuation runs on the
    /// link's receive thread and settles the piece there. Pooled, so a write allocates nothing once the pool has as
    /// many trackers as writes are ever in flight at once.
    /// </summary>
    private sealed class RemoteWrite
    {
        private readonly SwapDevice _device;
        private readonly Action _onReply;
        private PendingPiece _piece;

        public RemoteWrite(SwapDevice device)
        {
            _device = device;
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

            _device.ReturnTracker(this);
            _device.Settle(piece, reply);
        }
    }
}
