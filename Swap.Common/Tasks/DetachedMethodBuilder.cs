using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

// The compiler calls the builder pattern's members on the instance, whether they use it or not.
#pragma warning disable CA1822

namespace Swap.Common.Tasks;

/// <summary>The builder of <see cref="Detached"/> methods (fire and forget, boxes retained).</summary>
[StructLayout(LayoutKind.Auto)]
public struct DetachedMethodBuilder
{
    private RetainedValueTaskMethodBuilder<bool> _inner;

    public static DetachedMethodBuilder Create()
    {
        var builder = default(DetachedMethodBuilder);
        builder._inner.Detach();
        return builder;
    }

    public readonly Detached Task => default;

    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
        // Boxes are made by the inner builder, never by the runtime.
    }

    public void SetResult() => _inner.SetResult(true);

    /// <summary>As from <c>async void</c>: thrown again on the thread pool, which ends the process.</summary>
    public void SetException(Exception exception) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => ExceptionDispatchInfo.Throw(state), exception, preferLocal: false);

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine => _inner.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine => _inner.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
}
