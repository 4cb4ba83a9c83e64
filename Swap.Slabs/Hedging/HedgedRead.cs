using System.Threading.Tasks.Sources;
using Swap.BlockDevices;
using Swap.Common.Buffers;
using Swap.Daemon.Protocol;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Hedging;

/// <summary>
/// One READ raced between a daemon and the backup disk ("The Tail at Scale"'s hedged request), pooled by its
/// <see cref="ReadHedger"/> so a read allocates nothing. The daemon's bytes land in <see cref="DaemonBuffer"/>, never
/// in the caller's, because once the disk has answered the caller's buffer may be reused while the daemon's reply is
/// still on the wire. If the daemon has not answered by the deadline, the <see cref="HedgeSweeper"/> starts a disk
/// read into <see cref="DiskBuffer"/> on the thread pool; the first side to answer successfully completes the caller's
/// await, exactly once (a compare-and-swap on <c>_state</c>), and the loser's bytes are dropped with its buffer.
/// Buffers and the entry go back to their pools when the last of the caller, the daemon side and the disk side lets go.
/// </summary>
internal sealed class HedgedRead : IValueTaskSource<HedgeOutcome>, IThreadPoolWorkItem
{
    // _state is (use << PhaseBits) | phase: a sweeper looking at an entry that was reused meanwhile fails its swap.
    private const long Idle = 0;
    private const long Pending = 1;
    private const long Hedged = 2;
    private const long Done = 3;
    private const int PhaseBits = 2;
    private const long PhaseMask = (1 << PhaseBits) - 1;

    private readonly ReadHedger _owner;
    private readonly Action _onDaemonDone;
    private ManualResetValueTaskSourceCore<HedgeOutcome> _core;
    private long _state;
    private long _deadline;
    private long _use;
    private int _parties;
    private int _failures;
    private int _refused = -1;
    private ValueTask<DaemonReply> _daemonRead;
    private long _diskOffset;
    private int _length;
    private int _rentedBytes;

    public HedgedRead(ReadHedger owner, int index)
    {
        _owner = owner;
        Index = index;
        _onDaemonDone = OnDaemonDone;
        _core.RunContinuationsAsynchronously = false;
    }

    /// <summary>The entry's place in its hedger's pool.</summary>
    public int Index { get; }

    /// <summary>Where the daemon's READ lands (and what else the caller keeps beside it, such as sealed-page versions).</summary>
    public byte[] DaemonBuffer { get; private set; } = [];

    /// <summary>Where the disk's answer lands once the read is hedged; read it after a <see cref="HedgeWinner.Disk"/> outcome.</summary>
    public byte[] DiskBuffer { get; private set; } = [];

    /// <summary>Called by the hedger on a free entry: the caller's own hold and a daemon buffer of at least <paramref name="bytes"/>.</summary>
    internal void Rent(int bytes)
    {
        _rentedBytes = bytes;
        DaemonBuffer = PinnedBufferPool.Shared.Rent(bytes);
        _failures = 0;
        _refused = -1;
        Volatile.Write(ref _parties, 1);
    }

    /// <summary>
    /// Races <paramref name="daemonRead"/> (which reads into <see cref="DaemonBuffer"/>) against the disk from
    /// <paramref name="deadline"/> (a <see cref="TimeProvider"/> timestamp) on: the disk side reads
    /// <paramref name="length"/> bytes at <paramref name="diskOffset"/>. Call once per rent, then <see cref="Release"/>
    /// after reading the outcome (and the winner's buffer).
    /// </summary>
    public ValueTask<HedgeOutcome> Start(ValueTask<DaemonReply> daemonRead, long deadline, long diskOffset, int length)
    {
        _daemonRead = daemonRead;
        _diskOffset = diskOffset;
        _length = length;
        // Two holds: the daemon side's, and the armed race's. Whoever takes the race out of Pending takes over the
        // second: the sweeper hands it to the disk side it starts; a side that ends the race first drops it. So the
        // entry cannot come back to the pool (and be reused) while a sweeper that saw it pending may still fire it.
        Interlocked.Add(ref _parties, 2);
        Volatile.Write(ref _deadline, deadline);
        // Published after the deadline and the disk range: a sweeper that sees this use pending sees them too.
        Interlocked.Exchange(ref _state, (++_use << PhaseBits) | Pending);
        _owner.Armed();
        var awaiter = daemonRead.ConfigureAwait(false).GetAwaiter();
        if (awaiter.IsCompleted)
        {
            OnDaemonDone();
        }
        else
        {
            awaiter.UnsafeOnCompleted(_onDaemonDone);
        }

        return new ValueTask<HedgeOutcome>(this, _core.Version);
    }

    /// <summary>Waiting for its daemon within its bound (armed): what the sweeper looks at.</summary>
    internal bool IsPending => (Volatile.Read(ref _state) & PhaseMask) == Pending;

    /// <summary>
    /// Called by the sweeper: starts the disk side if this read is still pending and its deadline has passed, on the
    /// thread pool, or (when <paramref name="runHere"/> is still null) leaves it to the sweeper to run in place.
    /// Returns the deadline it still waits for, or <see cref="long.MaxValue"/> when it waits for none.
    /// </summary>
    internal long Fire(long now, ref HedgedRead? runHere)
    {
        var state = Volatile.Read(ref _state);
        if ((state & PhaseMask) != Pending)
        {
            return long.MaxValue;
        }

        var deadline = Volatile.Read(ref _deadline);
        if (now < deadline)
        {
            return deadline;
        }

        if (Interlocked.CompareExchange(ref _state, (state & ~PhaseMask) | Hedged, state) != state)
        {
            // Answered meanwhile, or already reused.
            return long.MaxValue;
        }

        // Hedged: the armed hold is the disk side's now. The daemon side may still win (and the caller let go) before
        // the disk side ends; the entry stays out of the pool until that side lets go too.
        _owner.AfterFireForTests?.Invoke();
        _owner.Disarmed();
        _owner.CountStarted();
        DiskBuffer = PinnedBufferPool.Shared.Rent(_length);
        if (runHere is null)
        {
            runHere = this;
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        return long.MaxValue;
    }

    /// <summary>The disk side: on the sweeper's thread for the first read a sweep fires, on the thread pool for the rest.</summary>
    public void Execute()
    {
        bool read;
        try
        {
            _owner.Disk.Read(_diskOffset, DiskBuffer.AsSpan(0, _length));
            read = true;
        }
        catch (Exception ex) when (ex is BlockDeviceException or IOException or ObjectDisposedException)
        {
            // Logged by the disk. The daemon may still answer; if not, the caller reads the disk again and reports it.
            read = false;
        }

        if (!read)
        {
            _ = Fail();
        }
        else if (TryFinish(out _))
        {
            _owner.CountWonByDisk();
            Complete(HedgeWinner.Disk);
        }

        Release();
    }

    /// <summary>Lets go of the entry: the caller after its outcome, each side when it has ended.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _parties) != 0)
        {
            return;
        }

        PinnedBufferPool.Shared.Return(DaemonBuffer);
        DaemonBuffer = [];
        if (DiskBuffer.Length != 0)
        {
            PinnedBufferPool.Shared.Return(DiskBuffer);
            DiskBuffer = [];
        }

        _core.Reset();
        Volatile.Write(ref _state, Volatile.Read(ref _state) & ~PhaseMask);
        _owner.Return(this, _rentedBytes);
    }

    /// <summary>The daemon side: runs where the daemon's reply completed (the link's receive thread, usually).</summary>
    private void OnDaemonDone()
    {
        bool ok;
        try
        {
            var reply = _daemonRead.GetAwaiter().GetResult();
            ok = reply.Ok;
            if (!ok)
            {
                Volatile.Write(ref _refused, (int)reply.Status);
            }
        }
        catch (DaemonLinkException)
        {
            // The link is down; the daemon pool unmaps every slab on it.
            ok = false;
        }

        _daemonRead = default;
        bool answered;
        if (!ok)
        {
            answered = Fail();
        }
        else if (answered = TryFinish(out var hedged))
        {
            if (hedged)
            {
                _owner.CountWonByDaemon();
            }

            Complete(HedgeWinner.Daemon);
        }

        if (!answered)
        {
            // The disk answered first (or is still reading): what landed in DaemonBuffer is dropped with it.
            _owner.CountDaemonDropped();
        }

        Release();
    }

    /// <summary>Ends the race for a side that has the bytes; false if the other side won already.</summary>
    private bool TryFinish(out bool hedged)
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            var phase = state & PhaseMask;
            hedged = phase == Hedged;
            if (phase != Pending && phase != Hedged)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _state, (state & ~PhaseMask) | Done, state) == state)
            {
                if (phase == Pending)
                {
                    DropArmedHold();
                }

                return true;
            }
        }
    }

    /// <summary>A side failed: the race ends without bytes only when no other side can still bring them; true if this ended it.</summary>
    private bool Fail()
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            var phase = state & PhaseMask;
            if (phase == Pending)
            {
                if (Interlocked.CompareExchange(ref _state, (state & ~PhaseMask) | Done, state) != state)
                {
                    continue;
                }

                DropArmedHold();
                Complete(HedgeWinner.Neither);
                return true;
            }

            // Hedged: both sides run; the second failure ends it.
            if (phase == Hedged && Interlocked.Increment(ref _failures) == 2 &&
                Interlocked.CompareExchange(ref _state, (state & ~PhaseMask) | Done, state) == state)
            {
                Complete(HedgeWinner.Neither);
                return true;
            }

            return false;
        }
    }

    /// <summary>The race left Pending without a disk side: the armed hold goes (never the last: the side ending it holds one).</summary>
    private void DropArmedHold()
    {
        _owner.Disarmed();
        Interlocked.Decrement(ref _parties);
    }

    private void Complete(HedgeWinner winner)
    {
        var refused = Volatile.Read(ref _refused);
        _core.SetResult(new HedgeOutcome(winner, refused < 0 ? null : (DaemonStatus)refused));
    }

    public HedgeOutcome GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
