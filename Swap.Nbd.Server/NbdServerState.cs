namespace Swap.Nbd.Server;

/// <summary>Server-wide state every connection consults: whether a shutdown has begun, who may poll, buffer memory.</summary>
internal sealed class NbdServerState(long bufferBudget = long.MaxValue)
{
    // Polling connections burn a CPU each; more of them than half the CPUs would starve the clients they wait for.
    private readonly int _maxPollers = Math.Max(1, Environment.ProcessorCount / 2);
    private volatile bool _stopping;
    private int _pollers;
    private long _bufferBytes;

    /// <summary>
    /// Bytes of request buffers all connections together may hold before a connection with requests of its own in
    /// flight waits for them (the host derives it from the GC heap limit).
    /// </summary>
    public long BufferBudget { get; } = bufferBudget;

    /// <summary>Bytes of request buffers held by requests in flight, all connections together.</summary>
    public long BufferBytes => Interlocked.Read(ref _bufferBytes);

    public void AddBufferBytes(long bytes) => Interlocked.Add(ref _bufferBytes, bytes);

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

    /// <summary>The host's instruments (<see cref="NbdMetrics.Unobserved"/> for a state made without one).</summary>
    public NbdMetrics Metrics { get; init; } = NbdMetrics.Unobserved;

    public bool IsStopping => _stopping;

    public void BeginStopping() => _stopping = true;
}
