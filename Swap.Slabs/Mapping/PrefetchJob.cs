using System.Runtime.CompilerServices;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// One cache slot's prefetch in flight: holds the read's awaiter and hands the outcome to the cache when it lands.
/// One object a slot, made at start, so starting a prefetch allocates nothing (no task, no closure).
/// </summary>
internal sealed class PrefetchJob
{
    private readonly Prefetcher _owner;
    private readonly int _slot;
    private readonly Action _landed;
    private ValueTaskAwaiter<bool> _awaiter;
    private SlabMapping? _mapping;

    public PrefetchJob(Prefetcher owner, int slot)
    {
        _owner = owner;
        _slot = slot;
        _landed = Landed;
    }

    /// <summary>Waits for <paramref name="read"/> (true: the slot holds the page) without blocking the caller.</summary>
    /// <param name="mapping">The slab's placement the page is read from: an answer landing after it was killed is thrown away.</param>
    public void Start(SlabMapping mapping, ValueTask<bool> read)
    {
        _mapping = mapping;
        _awaiter = read.GetAwaiter();
        if (_awaiter.IsCompleted)
        {
            Landed();
        }
        else
        {
            _awaiter.UnsafeOnCompleted(_landed);
        }
    }

    private void Landed()
    {
        bool succeeded;
        try
        {
            succeeded = _awaiter.GetResult();
        }
        catch (Exception ex) when (ex is DaemonLinkException or ObjectDisposedException or OperationCanceledException)
        {
            succeeded = false;
        }

        // Killed meanwhile (evicted, failed, moved): what it sent is not kept. Killed after this check, the slab's
        // drop finds the page loading (thrown away here) or ready (dropped there).
        succeeded &= _mapping!.Usable;
        _awaiter = default;
        _mapping = null;
        _owner.Landed(_slot, succeeded);
    }
}
