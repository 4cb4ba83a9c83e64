using System.Runtime.InteropServices;

namespace Swap.Slabs.Devices;

/// <summary>
/// An in-memory block device that commits memory only for pages that have been written; TRIM and
/// WRITE_ZEROES give whole pages back. Pages live in native memory so they neither grow the GC heap nor move.
/// </summary>
public sealed unsafe class SparseMemoryDevice : IBlockDevice
{
    public const int PageSize = 4096;
    private const int PageShift = 12;
    private const int PagesPerChunkShift = 9;
    private const int PagesPerChunk = 1 << PagesPerChunkShift;
    private const int ChunkShift = PageShift + PagesPerChunkShift; // 2 MiB per chunk
    private const int LockStripes = 256;

    // chunks[i] is null until a page in the chunk is written; each entry is a page pointer or 0.
    private readonly nint[]?[] _chunks;
    private readonly Lock[] _locks;
    private long _allocatedPages;
    private bool _disposed;

    public SparseMemoryDevice(long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
        _chunks = new nint[]?[(size + (1L << ChunkShift) - 1) >> ChunkShift];
        _locks = new Lock[LockStripes];
        for (var i = 0; i < _locks.Length; i++)
        {
            _locks[i] = new Lock();
        }
    }

    public long Size { get; }

    public BlockDeviceCapabilities Capabilities =>
        BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim |
        BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.Cache |
        BlockDeviceCapabilities.MultiConn;

    public int MinimumBlockSize => 1;

    /// <summary>Bytes of page memory currently committed.</summary>
    public long AllocatedBytes => Interlocked.Read(ref _allocatedPages) * PageSize;

    public bool TryRead(long offset, Span<byte> destination)
    {
        Read(offset, destination);
        return true;
    }

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        Read(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    public bool TryWrite(long offset, ReadOnlySpan<byte> source, bool fua)
    {
        Write(offset, source);
        return true;
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        Write(offset, source.Span);
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask TrimAsync(long offset, long length, bool fua, CancellationToken cancellationToken)
    {
        Zero(offset, length, free: true);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteZeroesAsync(long offset, long length, bool noHole, bool fastOnly, bool fua, CancellationToken cancellationToken)
    {
        // Zeroing memory is always cheaper than receiving the same bytes, so FAST_ZERO never fails here.
        Zero(offset, length, free: !noHole);
        return ValueTask.CompletedTask;
    }

    public int GetAllocation(long offset, long length, Span<AllocationExtent> extents)
    {
        CheckRange(offset, length);
        var count = 0;
        var runStart = offset;
        var runAllocated = IsPageAllocated(offset >> PageShift);
        var end = offset + length;
        var pos = offset;
        while (pos < end)
        {
            var page = pos >> PageShift;
            var allocated = IsPageAllocated(page);
            if (allocated != runAllocated)
            {
                extents[count++] = new AllocationExtent(pos - runStart, !runAllocated, !runAllocated);
                if (count == extents.Length)
                {
                    return count;
                }

                runStart = pos;
                runAllocated = allocated;
            }

            // Skip a whole unallocated chunk at once so a sparse 64 GiB device answers quickly.
            if (!allocated && _chunks[page >> PagesPerChunkShift] is null)
            {
                pos = Math.Min(end, ((page >> PagesPerChunkShift) + 1) << ChunkShift);
            }
            else
            {
                pos = Math.Min(end, (page + 1) << PageShift);
            }
        }

        extents[count++] = new AllocationExtent(end - runStart, !runAllocated, !runAllocated);
        return count;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var chunk in _chunks)
        {
            if (chunk is null)
            {
                continue;
            }

            foreach (var page in chunk)
            {
                if (page != 0)
                {
                    NativeMemory.AlignedFree((void*)page);
                }
            }
        }

        _allocatedPages = 0;
    }

    private bool IsPageAllocated(long page)
    {
        var chunk = Volatile.Read(ref _chunks[page >> PagesPerChunkShift]);
        return chunk is not null && Volatile.Read(ref chunk[page & (PagesPerChunk - 1)]) != 0;
    }

    private void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        while (!destination.IsEmpty)
        {
            var page = offset >> PageShift;
            var inPage = (int)(offset & (PageSize - 1));
            var n = Math.Min(destination.Length, PageSize - inPage);
            var chunkIndex = page >> PagesPerChunkShift;
            var chunk = Volatile.Read(ref _chunks[chunkIndex]);
            if (chunk is null)
            {
                destination[..n].Clear();
            }
            else
            {
                lock (_locks[chunkIndex % LockStripes])
                {
                    var p = chunk[page & (PagesPerChunk - 1)];
                    if (p == 0)
                    {
                        destination[..n].Clear();
                    }
                    else
                    {
                        new ReadOnlySpan<byte>((byte*)p + inPage, n).CopyTo(destination);
                    }
                }
            }

            destination = destination[n..];
            offset += n;
        }
    }

    private void Write(long offset, ReadOnlySpan<byte> source)
    {
        CheckRange(offset, source.Length);
        while (!source.IsEmpty)
        {
            var page = offset >> PageShift;
            var inPage = (int)(offset & (PageSize - 1));
            var n = Math.Min(source.Length, PageSize - inPage);
            var chunkIndex = page >> PagesPerChunkShift;
            lock (_locks[chunkIndex % LockStripes])
            {
                var chunk = _chunks[chunkIndex];
                if (chunk is null)
                {
                    chunk = new nint[PagesPerChunk];
                    Volatile.Write(ref _chunks[chunkIndex], chunk);
                }

                ref var slot = ref chunk[page & (PagesPerChunk - 1)];
                if (slot == 0)
                {
                    var p = (byte*)NativeMemory.AlignedAlloc(PageSize, PageSize);
                    if (n != PageSize)
                    {
                        new Span<byte>(p, PageSize).Clear();
                    }

                    Volatile.Write(ref slot, (nint)p);
                    Interlocked.Increment(ref _allocatedPages);
                }

                source[..n].CopyTo(new Span<byte>((byte*)slot + inPage, n));
            }

            source = source[n..];
            offset += n;
        }
    }

    private void Zero(long offset, long length, bool free)
    {
        CheckRange(offset, length);
        var end = offset + length;
        while (offset < end)
        {
            var page = offset >> PageShift;
            var inPage = (int)(offset & (PageSize - 1));
            var n = (int)Math.Min(end - offset, PageSize - inPage);
            var chunkIndex = page >> PagesPerChunkShift;
            var chunk = Volatile.Read(ref _chunks[chunkIndex]);
            if (chunk is null)
            {
                // Whole chunk is a hole already: skip to its end.
                offset = Math.Min(end, (chunkIndex + 1) << ChunkShift);
                continue;
            }

            lock (_locks[chunkIndex % LockStripes])
            {
                ref var slot = ref chunk[page & (PagesPerChunk - 1)];
                if (slot != 0)
                {
                    if (n == PageSize && free)
                    {
                        NativeMemory.AlignedFree((void*)slot);
                        slot = 0;
                        Interlocked.Decrement(ref _allocatedPages);
                    }
                    else
                    {
                        new Span<byte>((byte*)slot + inPage, n).Clear();
                    }
                }
            }

            offset += n;
        }
    }

    private void CheckRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new BlockDeviceException(BlockDeviceError.Invalid, $"range {offset}+{length} is outside the device (size {Size})");
        }
    }
}
