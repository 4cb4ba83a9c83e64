using System.Threading.Tasks.Sources;

namespace Swap.Nbd.Server.Transmission;

/// <summary>
/// The reply lock of one connection, taken blocking by the connection's own thread (<see cref="Enter"/>) and
/// asynchronously by any other (<see cref="EnterAsync"/>), first come first served, allocating nothing: waiters are
/// reusable objects kept for good, as many as ever waited at once. A <see cref="SemaphoreSlim"/> allocated a task, a
/// node and a cancellation promise for every contended asynchronous wait, which on a host swapping to this server
/// is a page that may wait in reclaim (docs/operations.md, "Whole-machine swap"). An asynchronous waiter given the
/// lock resumes on the thread pool, never on the thread that let go (that thread may be a daemon link's).
/// </summary>
internal sealed class ReplyLock
{
    private readonly Lock _gate = new();
    private readonly Queue<(Waiter Waiter, int Generation)> _queue = new();
    private readonly Stack<Waiter> _free = new();
    private readonly Waiter _blocking;
    private bool _held;

    public ReplyLock() => _blocking = new Waiter(this, blocking: true);

    /// <summary>Takes the lock if it is free now.</summary>
    public bool TryEnter()
    {
        lock (_gate)
        {
            if (_held)
            {
                return false;
            }

            _held = true;
            return true;
        }
    }

    /// <summary>
    /// Takes the lock, blocking the caller; one thread only (the connection's). Throws
    /// <see cref="OperationCanceledException"/> if <paramref name="ct"/> fires first.
    /// </summary>
    public void Enter(CancellationToken ct)
    {
        lock (_gate)
        {
            if (!_held)
            {
                _held = true;
                return;
            }

            var generation = _blocking.Arm();
            _queue.Enqueue((_blocking, generation));
        }

        _blocking.WaitBlocking(ct);
    }

    /// <summary>Takes the lock, or waits for it without blocking; the result must be awaited once.</summary>
    public ValueTask EnterAsync(CancellationToken ct)
    {
        Waiter waiter;
        int generation;
        short version;
        lock (_gate)
        {
            if (!_held)
            {
                _held = true;
                return ValueTask.CompletedTask;
            }

            waiter = _free.TryPop(out var free) ? free : new Waiter(this, blocking: false);
            generation = waiter.Arm();
            // Before it is queued, so nothing can give it the lock (and recycle it) before its version is read.
            version = waiter.Register(ct);
            _queue.Enqueue((waiter, generation));
        }

        return new ValueTask(waiter, version);
    }

    /// <summary>Lets go: the first waiter still waiting gets the lock.</summary>
    public void Exit()
    {
        Waiter? next = null;
        lock (_gate)
        {
            while (_queue.TryDequeue(out var entry))
            {
                if (entry.Waiter.TryGrant(entry.Generation))
                {
                    next = entry.Waiter;
                    break;
                }
            }

            if (next is null)
            {
                _held = false;
            }
        }

        next?.Wake();
    }

    private void Recycle(Waiter waiter)
    {
        lock (_gate)
        {
            _free.Push(waiter);
        }
    }

    /// <summary>One wait for the lock; reused. <see cref="_state"/>: 0 waiting, 1 given the lock, 2 cancelled.</summary>
    private sealed class Waiter(ReplyLock owner, bool blocking) : IValueTaskSource, IThreadPoolWorkItem
    {
        private const int Waiting = 0;
        private const int Granted = 1;
        private const int Cancelled = 2;

        private readonly ManualResetEventSlim? _event = blocking ? new ManualResetEventSlim() : null;
        private ManualResetValueTaskSourceCore<bool> _core;
        private CancellationTokenRegistration _registration;
        private CancellationToken _token;
        private int _state;
        private int _generation;

        /// <summary>Under the owner's gate: a new wait, told apart from older queue entries by its generation.</summary>
        public int Arm()
        {
            _event?.Reset();
            Volatile.Write(ref _state, Waiting);
            return ++_generation;
        }

        /// <summary>Under the owner's gate: true if this queue entry is the current wait and still waiting.</summary>
        public bool TryGrant(int generation) =>
            generation == _generation && Interlocked.CompareExchange(ref _state, Granted, Waiting) == Waiting;

        public void Wake()
        {
            if (_event is not null)
            {
                _event.Set();
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }
        }

        public void WaitBlocking(CancellationToken ct)
        {
            try
            {
                _event!.Wait(ct);
            }
            catch (OperationCanceledException) when (Interlocked.CompareExchange(ref _state, Cancelled, Waiting) != Waiting)
            {
                // Given the lock as the wait was cancelled: it is held, as if the wait had won.
            }
        }

        /// <summary>Under the owner's gate, after <see cref="Arm"/>: cancellation wired; the version to await.</summary>
        public short Register(CancellationToken ct)
        {
            _token = ct;
            if (ct.CanBeCanceled)
            {
                // Fires at once if already cancelled: the wait then fails as soon as it is awaited.
                _registration = ct.UnsafeRegister(static state => ((Waiter)state!).Cancel(), this);
            }

            return _core.Version;
        }

        void IThreadPoolWorkItem.Execute() => _core.SetResult(true);

        public void GetResult(short token)
        {
            try
            {
                _core.GetResult(token);
            }
            finally
            {
                _registration.Dispose();
                _registration = default;
                _core.Reset();
                owner.Recycle(this);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        private void Cancel()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelled, Waiting) == Waiting)
            {
                _core.SetException(new OperationCanceledException(_token));
            }
        }
    }
}
