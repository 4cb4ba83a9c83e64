using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Swap.Common.Tasks;

/// <summary>
/// The heap half of an async method run by <see cref="RetainedValueTaskMethodBuilder{TResult}"/>: its state machine,
/// the continuation that resumes it, and the result its awaiter reads. Boxes of one state machine type are kept in a
/// free list for good once made (see <see cref="RetainedBox{TStateMachine, TResult}"/>), so a method that goes
/// asynchronous allocates nothing once the list holds as many boxes as calls were ever in flight at once.
/// </summary>
public abstract class RetainedBox<TResult> : IValueTaskSource<TResult>, IValueTaskSource, IThreadPoolWorkItem
{
    private ManualResetValueTaskSourceCore<TResult> _core;

    /// <summary>Resumes the state machine; made once with the box.</summary>
    public Action MoveNextAction { get; }

    /// <summary>True for a method nobody awaits (<see cref="DetachedMethodBuilder"/>): the box goes back when the method ends.</summary>
    internal bool Detached { get; set; }

    protected RetainedBox() => MoveNextAction = MoveNext;

    public short Version => _core.Version;

    public void SetResult(TResult result)
    {
        if (Detached)
        {
            Return();
            return;
        }

        _core.SetResult(result);
    }

    public void SetException(Exception exception) => _core.SetException(exception);

    public TResult GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Recycle();
        }
    }

    void IValueTaskSource.GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            Recycle();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>Resumes the state machine on a pool thread (<see cref="ThreadPoolHop"/> queues the box itself).</summary>
    void IThreadPoolWorkItem.Execute() => MoveNext();

    protected abstract void MoveNext();

    /// <summary>Clears the state machine and puts the box on its type's free list.</summary>
    protected abstract void Return();

    private void Recycle()
    {
        _core.Reset();
        Return();
    }
}

/// <summary>A box for one state machine type, with that type's free list (a stack that only grows, under a lock).</summary>
public sealed class RetainedBox<TStateMachine, TResult> : RetainedBox<TResult>
    where TStateMachine : IAsyncStateMachine
{
    private static readonly Lock FreeLock = new();
    private static RetainedBox<TStateMachine, TResult>[] _free = new RetainedBox<TStateMachine, TResult>[16];
    private static int _freeCount;

    private TStateMachine? _stateMachine;

    private RetainedBox()
    {
    }

    /// <summary>A free box, or a new one when every box made so far is in use.</summary>
    public static RetainedBox<TStateMachine, TResult> Rent()
    {
        lock (FreeLock)
        {
            if (_freeCount > 0)
            {
                var box = _free[--_freeCount];
                _free[_freeCount] = null!;
                return box;
            }
        }

        return new RetainedBox<TStateMachine, TResult>();
    }

    /// <summary>Boxes of this type on the free list now (for tests).</summary>
    public static int FreeCount
    {
        get
        {
            lock (FreeLock)
            {
                return _freeCount;
            }
        }
    }

    public void Hold(ref TStateMachine stateMachine) => _stateMachine = stateMachine;

    protected override void MoveNext() => _stateMachine!.MoveNext();

    protected override void Return()
    {
        _stateMachine = default;
        Detached = false;
        lock (FreeLock)
        {
            if (_freeCount == _free.Length)
            {
                // Only at a new peak of calls in flight at once.
                Array.Resize(ref _free, _free.Length * 2);
            }

            _free[_freeCount++] = this;
        }
    }
}
