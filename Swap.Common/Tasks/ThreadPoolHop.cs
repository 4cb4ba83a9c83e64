using System.Runtime.CompilerServices;

namespace Swap.Common.Tasks;

/// <summary>
/// <c>await new ThreadPoolHop()</c>: continues on a pool thread, as <c>await Task.Yield()</c> does outside any
/// context, but in a method built by <see cref="RetainedValueTaskMethodBuilder{TResult}"/> it queues the method's box
/// itself and so allocates nothing (Task.Yield wraps any continuation but the runtime's own boxes in a new work item).
/// Used where a method resumed on a daemon link's receive thread must do its blocking disk work elsewhere.
/// </summary>
public readonly struct ThreadPoolHop : ICriticalNotifyCompletion
{
    public ThreadPoolHop GetAwaiter() => this;

    public bool IsCompleted => false;

    public void GetResult()
    {
    }

    public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

    public void UnsafeOnCompleted(Action continuation)
    {
        if (continuation.Target is IThreadPoolWorkItem box)
        {
            ThreadPool.UnsafeQueueUserWorkItem(box, preferLocal: false);
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(static action => action(), continuation, preferLocal: false);
        }
    }
}
