namespace Swap.Common.Hosting;

/// <summary>
/// Starts the thread pool's workers at start rather than in the first swap storm. A new worker is a new stack, new
/// thread-local data and a new GC allocation context: pages that, on a host swapping to this server, wait in reclaim
/// for the swap-outs the server has to complete (seen in the whole-machine test: the pool's gate thread injecting a
/// worker, in a page fault, while workers waited on the disk). Each worker started here touches its stack
/// (<see cref="StackPrefault"/>); with <c>System.Threading.ThreadPool.ThreadsToKeepAlive</c> -1 (swapnbd-server's
/// runtimeconfig) none of them ever retires, so the pool does not make them again.
/// </summary>
public static class ThreadPoolWarmup
{
    /// <summary>
    /// Sets the pool's minimum and maximum to <paramref name="workers"/> and has that many running at once, so the pool
    /// never makes a thread again; false if they were not all running within <paramref name="timeout"/> (the maximum
    /// then stays as it was, and the pool grows later as usual).
    /// </summary>
    public static bool StartFixed(int workers, TimeSpan timeout)
    {
        ThreadPool.GetMinThreads(out _, out var minIo);
        ThreadPool.SetMinThreads(workers, minIo);
        // Not disposed: a worker may still be on its way into Wait after the release.
        var allStarted = new CountdownEvent(workers);
        var release = new ManualResetEventSlim();
        for (var i = 0; i < workers; i++)
        {
            ThreadPool.UnsafeQueueUserWorkItem(
                static state =>
                {
                    StackPrefault.Touch();
                    state.AllStarted.Signal();
                    state.Release.Wait(state.Timeout);
                },
                (AllStarted: allStarted, Release: release, Timeout: timeout),
                preferLocal: false);
        }

        var started = allStarted.Wait(timeout);
        release.Set();
        if (started)
        {
            ThreadPool.GetMaxThreads(out _, out var maxIo);
            ThreadPool.SetMaxThreads(workers, maxIo);
        }

        return started;
    }
}
