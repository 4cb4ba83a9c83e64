using System.Runtime.InteropServices;

namespace Swap.Slabs.Backup;

/// <summary>
/// A fixed set of equal, aligned native buffers for direct I/O, allocated and touched once (so mlockall(MCL_ONFAULT)
/// locks them) and never freed before <see cref="Dispose"/>. A caller that finds none free waits for one: the set is
/// the bound on the memory direct I/O takes, whatever the number of callers.
/// </summary>
internal sealed unsafe class AlignedBufferPool : IDisposable
{
    private readonly nint[] _buffers;
    private readonly int[] _free;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _available;
    private int _freeCount;
    private bool _disposed;

    public AlignedBufferPool(int count, int bufferSize, int alignment)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (bufferSize <= 0 || bufferSize % alignment != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bufferSize), $"{bufferSize} is not a positive multiple of {alignment}");
        }

        BufferSize = bufferSize;
        _buffers = new nint[count];
        _free = new int[count];
        for (var i = 0; i < count; i++)
        {
            var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bufferSize, (nuint)alignment);
            for (var page = 0; page < bufferSize; page += Environment.SystemPageSize)
            {
                buffer[page] = 0;
            }

            _buffers[i] = (nint)buffer;
            _free[i] = i;
        }

        _freeCount = count;
        _available = new SemaphoreSlim(count, count);
    }

    public int BufferSize { get; }

    public int Count => _buffers.Length;

    /// <summary>Takes a buffer, waiting for one if all are out. Give its index back with <see cref="Return"/>.</summary>
    public int Rent(out byte* buffer)
    {
        _available.Wait();
        lock (_lock)
        {
            var index = _free[--_freeCount];
            buffer = (byte*)_buffers[index];
            return index;
        }
    }

    /// <summary>Takes a buffer if one is free, without waiting; -1 when all are out.</summary>
    public int TryRent(out byte* buffer)
    {
        if (!_available.Wait(0))
        {
            buffer = null;
            return -1;
        }

        lock (_lock)
        {
            var index = _free[--_freeCount];
            buffer = (byte*)_buffers[index];
            return index;
        }
    }

    public void Return(int index)
    {
        lock (_lock)
        {
            _free[_freeCount++] = index;
        }

        _available.Release();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var buffer in _buffers)
            {
                NativeMemory.AlignedFree((void*)buffer);
            }
        }

        _available.Dispose();
    }
}
