using System.Numerics;

namespace Swap.Common.Buffers;

/// <summary>
/// A bounded pool of pinned byte arrays in power-of-two size classes (4 KiB to 32 MiB), so the I/O path reuses
/// memory instead of allocating per request, and buffers never move (safe for mlock and native I/O).
/// </summary>
public sealed class PinnedBufferPool
{
    public const int MinimumSize = 4096;
    public const int MaximumSize = 32 * 1024 * 1024;
    private const int MinimumShift = 12;

    private readonly SizeClass[] _classes;
    private readonly long _retainBytesTotal;
    private readonly Lock _returnLock = new();
    private TaskCompletionSource? _returned;
    private long _retainedBytes;
    private long _waits;

    /// <param name="retainBytesPerClass">How many bytes each size class keeps for reuse; more are allocated and dropped on return.</param>
    /// <param name="retainBytesTotal">How many bytes all classes together keep, so a shifting request mix cannot fill every class.</param>
    public PinnedBufferPool(long retainBytesPerClass = 64L * 1024 * 1024, long retainBytesTotal = long.MaxValue)
    {
        _retainBytesTotal = retainBytesTotal;
        _classes = new SizeClass[BitOperations.Log2(MaximumSize) - MinimumShift + 1];
        for (var i = 0; i < _classes.Length; i++)
        {
            var size = MinimumSize << i;
            _classes[i] = new SizeClass(this, size, (int)Math.Clamp(Math.Min(retainBytesPerClass, retainBytesTotal) / size, 1, int.MaxValue));
        }
    }

    public static PinnedBufferPool Shared { get; } = new();

    /// <summary>Returns a pinned array of at least <paramref name="length"/> bytes.</summary>
    public byte[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaximumSize);
        return _classes[ClassOf(length)].Rent();
    }

    public void Return(byte[] buffer)
    {
        var index = ClassOf(buffer.Length);
        if ((MinimumSize << index) != buffer.Length)
        {
            throw new ArgumentException("buffer was not rented from this pool", nameof(buffer));
        }

        _classes[index].Return(buffer);
    }

    /// <summary>
    /// When true, <see cref="RentAsync"/> never allocates a buffer of a size the pool has made before: it takes one
    /// of that class or a larger one, or waits until one is returned. For a process that must not need new memory
    /// while serving swap (memory locked): a new buffer is new pages, and on a host swapping to it every new page may
    /// wait in reclaim for the requests in flight (docs/operations.md, "Whole-machine swap").
    /// </summary>
    public bool Fixed { get; set; }

    /// <summary>
    /// A buffer of at least <paramref name="length"/> bytes: as <see cref="Rent"/>, or with <see cref="Fixed"/> one
    /// of the buffers the pool holds, waiting for a return when none is free (larger than any it holds: allocated).
    /// </summary>
    public ValueTask<byte[]> RentAsync(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaximumSize);
        if (!Fixed)
        {
            return ValueTask.FromResult(Rent(length));
        }

        return TryRentHeld(length, out var buffer) ? ValueTask.FromResult(buffer) : WaitForBufferAsync(length);
    }

    /// <summary>Times <see cref="RentAsync"/> found no buffer free and waited for one.</summary>
    public long Waits => Interlocked.Read(ref _waits);

    /// <summary>Allocates <paramref name="count"/> buffers of the class holding <paramref name="length"/> up front.</summary>
    public void Preallocate(int length, int count)
    {
        var sizeClass = _classes[ClassOf(length)];
        for (var i = 0; i < count; i++)
        {
            sizeClass.Return(sizeClass.Allocate());
        }
    }

    /// <summary>
    /// Fills every size class from 4 KiB up to <paramref name="largest"/> with <paramref name="bytesPerClass"/> of
    /// buffers (at least one each), so the first requests after start do not allocate.
    /// </summary>
    public void PreallocateClasses(int largest, long bytesPerClass)
    {
        for (var size = MinimumSize; size <= largest; size <<= 1)
        {
            Preallocate(size, (int)Math.Max(1, bytesPerClass / size));
        }
    }

    /// <summary>Bytes held for reuse right now (what <see cref="Preallocate"/> and returned buffers left in the pool).</summary>
    public long RetainedBytes => Interlocked.Read(ref _retainedBytes);

    private bool TryRetain(int size)
    {
        if (Interlocked.Add(ref _retainedBytes, size) <= _retainBytesTotal)
        {
            return true;
        }

        Interlocked.Add(ref _retainedBytes, -size);
        return false;
    }

    /// <summary>A free buffer of the class of <paramref name="length"/> or a larger class; false when none is free.</summary>
    private bool TryRentHeld(int length, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? buffer)
    {
        for (var index = ClassOf(length); index < _classes.Length; index++)
        {
            if (_classes[index].TryRentFree(out buffer))
            {
                return true;
            }
        }

        buffer = null;
        return false;
    }

    private async ValueTask<byte[]> WaitForBufferAsync(int length)
    {
        Interlocked.Increment(ref _waits);
        while (true)
        {
            if (!HoldsAny(length))
            {
                // Larger than anything the pool was given: nothing returned will fit.
                return Rent(length);
            }

            Task returned;
            lock (_returnLock)
            {
                _returned ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                returned = _returned.Task;
            }

            if (TryRentHeld(length, out var buffer))
            {
                return buffer;
            }

            await returned.ConfigureAwait(false);
        }
    }

    /// <summary>Whether some class that fits <paramref name="length"/> has ever made a buffer.</summary>
    private bool HoldsAny(int length)
    {
        for (var index = ClassOf(length); index < _classes.Length; index++)
        {
            if (_classes[index].Made > 0)
            {
                return true;
            }
        }

        return false;
    }

    private void SignalReturn()
    {
        TaskCompletionSource? returned;
        lock (_returnLock)
        {
            returned = _returned;
            _returned = null;
        }

        returned?.TrySetResult();
    }

    private static int ClassOf(int length) =>
        length <= MinimumSize ? 0 : BitOperations.Log2((uint)length - 1) + 1 - MinimumShift;

    private sealed class SizeClass(PinnedBufferPool pool, int size, int retain)
    {
        private readonly byte[]?[] _free = new byte[]?[retain];
        private readonly Lock _lock = new();
        private int _count;
        private int _made;

        public byte[] Rent() => TryRentFree(out var buffer) ? buffer : Allocate();

        /// <summary>Buffers of this class made so far.</summary>
        public int Made => Volatile.Read(ref _made);

        public bool TryRentFree([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? buffer)
        {
            lock (_lock)
            {
                if (_count > 0)
                {
                    buffer = _free[--_count]!;
                    _free[_count] = null;
                    Interlocked.Add(ref pool._retainedBytes, -size);
                    return true;
                }
            }

            buffer = null;
            return false;
        }

        public byte[] Allocate()
        {
            Interlocked.Increment(ref _made);
            var buffer = GC.AllocateUninitializedArray<byte>(size, pinned: true);

            // Touch every page now. Under mlockall(MCL_ONFAULT) that is what locks it, so a request never takes a page
            // fault on its buffer, which could need memory the kernel is waiting on this very request to free.
            for (var page = 0; page < buffer.Length; page += MinimumSize)
            {
                buffer[page] = 0;
            }

            return buffer;
        }

        public void Return(byte[] buffer)
        {
            bool kept;
            lock (_lock)
            {
                kept = _count < _free.Length && pool.TryRetain(size);
                if (kept)
                {
                    _free[_count++] = buffer;
                }
            }

            if (kept && pool.Fixed)
            {
                pool.SignalReturn();
            }
        }
    }
}
