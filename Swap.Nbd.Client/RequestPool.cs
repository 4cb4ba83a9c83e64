namespace Swap.Nbd.Client;

/// <summary>A small per-connection free list of <see cref="PendingRequest"/> objects.</summary>
internal sealed class RequestPool(bool inlineCompletions, int capacity = 1024)
{
    private readonly Stack<PendingRequest> _free = new();
    private readonly Lock _lock = new();

    public PendingRequest Rent()
    {
        lock (_lock)
        {
            if (_free.TryPop(out var request))
            {
                return request;
            }
        }

        return new PendingRequest(this, inlineCompletions);
    }

    public void Return(PendingRequest request)
    {
        lock (_lock)
        {
            if (_free.Count < capacity)
            {
                _free.Push(request);
            }
        }
    }
}
