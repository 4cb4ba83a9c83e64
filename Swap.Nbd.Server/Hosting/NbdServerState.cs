namespace Swap.Nbd.Server.Hosting;

/// <summary>Server-wide state every connection consults: whether a shutdown has begun, who may poll.</summary>
internal sealed class NbdServerState
{
    // Polling connections burn a CPU each; more of them than half the CPUs would starve the clients they wait for.
    private readonly int _maxPollers = Math.Max(1, Environment.ProcessorCount / 2);
    private volatile bool _stopping;
    private int _pollers;

    /// <summary>Takes a polling slot if one is free; the caller must call <see cref="EndPoll"/> after a true.</summary>
    public bool TryBeginPoll()
    {
        if (Interlocked.Increment(ref _pollers) <= _maxPollers)
        {
            return true;
        }

        Interlocked.Decrement(ref _pollers);
        return false;
    }

    public void EndPoll() => Interlocked.Decrement(ref _pollers);

    public bool IsStopping => _stopping;

    public void BeginStopping() => _stopping = true;
}
