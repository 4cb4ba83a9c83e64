using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

// The compiler calls the builder pattern's members on the instance, whether they use it or not.
#pragma warning disable CA1822

namespace Swap.Common.Tasks;

/// <summary>
/// An async method builder for <see cref="ValueTask{TResult}"/> methods on the request path
/// (<c>[AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder&lt;&gt;))]</c>). Like the runtime's
/// <see cref="PoolingAsyncValueTaskMethodBuilder{TResult}"/> it reuses the box an asynchronous call needs, but it keeps
/// every box it ever made (the runtime keeps one a thread and one a core, and drops the rest), so a path with a
/// hundred calls in flight at once stops allocating after its first peak. On a host swapping to this server every
/// allocation is a page that may wait for reclaim (docs/operations.md, "Whole-machine swap").
/// </summary>
/// <remarks>
/// The execution context does not flow across awaits (nothing on these paths uses AsyncLocal), and the call runs its
/// first part on the caller's thread without saving the caller's context. A box returns to its free list when its
/// result is read, so a <see cref="ValueTask{TResult}"/> from this builder must be awaited exactly once, as any
/// ValueTask.
/// </remarks>
[StructLayout(LayoutKind.Auto)]
public struct RetainedValueTaskMethodBuilder<TResult>
{
    private RetainedBox<TResult>? _box;
    private TResult? _result;
    private Exception? _exception;
    private bool _detached;

    public static RetainedValueTaskMethodBuilder<TResult> Create() => default;

    public readonly ValueTask<TResult> Task =>
        _box is { } box ? new ValueTask<TResult>(box, box.Version)
        : _exception is { } exception ? ValueTask.FromException<TResult>(exception)
        : new ValueTask<TResult>(_result!);

    /// <summary>The call as a <see cref="ValueTask"/> (for <see cref="RetainedValueTaskMethodBuilder"/>).</summary>
    internal readonly ValueTask AsValueTask() =>
        _box is { } box ? new ValueTask(box, box.Version)
        : _exception is { } exception ? ValueTask.FromException(exception)
        : default;

    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
        // Boxes are made by this builder, never by the runtime.
    }

    public void SetResult(TResult result)
    {
        if (_box is { } box)
        {
            box.SetResult(result);
        }
        else
        {
            _result = result;
        }
    }

    public void SetException(Exception exception)
    {
        if (_box is { } box)
        {
            box.SetException(exception);
        }
        else
        {
            _exception = exception;
        }
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        awaiter.OnCompleted(Box(ref stateMachine).MoveNextAction);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        awaiter.UnsafeOnCompleted(Box(ref stateMachine).MoveNextAction);

    /// <summary>Marks the call as one nobody awaits: its box goes back when it ends (<see cref="DetachedMethodBuilder"/>).</summary>
    internal void Detach() => _detached = true;

    private RetainedBox<TResult> Box<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is { } box)
        {
            return box;
        }

        // This builder is a field of the state machine: set the box here first, so the copy the box holds has it too.
        var made = RetainedBox<TStateMachine, TResult>.Rent();
        made.Detached = _detached;
        _box = made;
        made.Hold(ref stateMachine);
        return made;
    }
}

/// <summary>The <see cref="ValueTask"/> form of <see cref="RetainedValueTaskMethodBuilder{TResult}"/>.</summary>
[StructLayout(LayoutKind.Auto)]
public struct RetainedValueTaskMethodBuilder
{
    private RetainedValueTaskMethodBuilder<bool> _inner;

    public static RetainedValueTaskMethodBuilder Create() => default;

    public readonly ValueTask Task => _inner.AsValueTask();

    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
        // Boxes are made by this builder, never by the runtime.
    }

    public void SetResult() => _inner.SetResult(true);

    public void SetException(Exception exception) => _inner.SetException(exception);

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine => _inner.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine => _inner.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
}
