namespace Swap.Slabs.Remote;

/// <summary>
/// The request slots of one <see cref="DaemonLink"/>: a fixed set of reusable awaitables, so a request allocates
/// nothing. A caller first reserves a capacity unit (waiting when every slot is taken), then takes a slot; the slot
/// comes back, and frees its unit, when the caller has read its result.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "The semaphore's wait handle is never created, so it holds nothing to dispose; disposing it would break a slot whose result is read after the link is gone.")]
internal sealed class RequestSlotPool
{
    /// <summary>The low 16 bits of a request id name its slot.</summary>
    public const int MaxSize = 1 << 16;

    private readonly DaemonRequest[] _slots;
    private readonly int[] _free;
    private readonly Lock _freeLock = new();
    private readonly SemaphoreSlim _capacity;
    private int _freeCount;
    private long _sequence;

    public RequestSlotPool(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, MaxSize);
        _slots = new DaemonRequest[size];
        _free = new int[size];
        _capacity = new SemaphoreSlim(size, size);
        for (var i = 0; i < size; i++)
        {
            _slots[i] = new DaemonRequest(this, i);
            _free[i] = size - 1 - i;
        }

        _freeCount = size;
    }

    /// <summary>Every slot, free or not (the watchdog and the final sweep look at their deadlines).</summary>
    public ReadOnlySpan<DaemonRequest> Slots => _slots;

    /// <summary>Reserves a capacity unit if one is free now.</summary>
    public bool TryReserve() => _capacity.Wait(0);

    /// <summary>Reserves a capacity unit, blocking the caller up to <paramref name="timeout"/>.</summary>
    public bool Reserve(TimeSpan timeout) => _capacity.Wait(timeout);

    /// <summary>Reserves a capacity unit, waiting asynchronously up to <paramref name="timeout"/>.</summary>
    public Task<bool> ReserveAsync(TimeSpan timeout) => _capacity.WaitAsync(timeout);

    /// <summary>Called holding a capacity unit: a free slot, for <see cref="DaemonRequest.Begin"/>.</summary>
    public DaemonRequest Take()
    {
        lock (_freeLock)
        {
            return _slots[_free[--_freeCount]];
        }
    }

    /// <summary>The sequence for the next <see cref="DaemonRequest.Begin"/>: 48 bits, so it fits above the slot index.</summary>
    public ulong NextSequence() => (ulong)Interlocked.Increment(ref _sequence) & 0xFFFF_FFFF_FFFF;

    /// <summary>The pending slot whose current request has this id, or null.</summary>
    public DaemonRequest? Pending(ulong requestId)
    {
        var index = (int)(requestId & 0xFFFF);
        var slot = index < _slots.Length ? _slots[index] : null;
        return slot is null || Volatile.Read(ref slot.Deadline) == 0 || slot.RequestId != requestId ? null : slot;
    }

    /// <summary>Returns a slot whose result was read, and its capacity unit.</summary>
    public void Release(DaemonRequest request)
    {
        lock (_freeLock)
        {
            _free[_freeCount++] = request.Index;
        }

        _capacity.Release();
    }

    /// <summary>Fails every pending slot that nobody else completes first.</summary>
    public void FailPending(Exception error)
    {
        foreach (var slot in _slots)
        {
            if (Volatile.Read(ref slot.Deadline) != 0 && slot.TryClaim())
            {
                slot.Fail(error);
            }
        }
    }
}
