using System.Numerics;

namespace Swap.BlockDevices;

/// <summary>
/// An in-memory block device that commits memory only for pages that have been written; TRIM and
/// WRITE_ZEROES give whole pages back to the kernel. The address space is reserved in 2 MiB anonymous mappings,
/// created on first write to a chunk, so memory costs what is stored (no allocator overhead per page) and lives
/// outside the GC heap.
/// </summary>
/// <remarks>
/// About 300 lines on purpose: the chunk map, the page bitmap and the I/O over them share one invariant (a chunk is
/// mapped before its pages are marked written, and never unmapped while in use), which is easiest to check in one file.
/// No locks: a mapping is never unmapped while the device is in use, so overlapping concurrent requests (whose
/// result NBD leaves undefined) can race on content but never on memory safety. Per-page "written" bits, kept
/// with atomic operations, answer BLOCK_STATUS and count committed memory.
/// </remarks>
public sealed unsafe class SparseMemoryDevice : IBlockDevice
{
    public const int PageSize = 4096;
    private const int PageShift = 12;
    private const int ChunkShift = 21; // 2 MiB
    private const long ChunkSize = 1L << ChunkShift;
    private const int PagesPerChunk = 1 << (ChunkShift - PageShift);
    private const int WordsPerChunk = PagesPerChunk / 64;

    private readonly nint[] _chunks;
    private readonly ulong[] _written;
    private long _allocatedPages;
    private int _disposed;

    public SparseMemoryDevice(long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
        var chunks = (size + ChunkSize - 1) >> ChunkShift;
        _chunks = new nint[chunks];
        _written = new ulong[chunks * WordsPerChunk];
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
        CheckRange(offset, destination.Length);
        while (!destination.IsEmpty)
        {
            var n = (int)Math.Min(destination.Length, ChunkSize - (offset & (ChunkSize - 1)));
            var chunk = Volatile.Read(ref _chunks[offset >> ChunkShift]);
            if (chunk == 0)
            {
                destination[..n].Clear();
            }
            else
            {
                // Never-written and discarded pages of an anonymous mapping read as zero.
                new ReadOnlySpan<byte>((byte*)chunk + (offset & (ChunkSize - 1)), n).CopyTo(destination);
            }

            destination = destination[n..];
            offset += n;
        }

        return true;
    }

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        TryRead(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    public bool TryWrite(long offset, ReadOnlySpan<byte> source, bool fua)
    {
        CheckRange(offset, source.Length);
        while (!source.IsEmpty)
        {
            var n = (int)Math.Min(source.Length, ChunkSize - (offset & (ChunkSize - 1)));
            var chunk = MapChunk(offset >> ChunkShift);
            source[..n].CopyTo(new Span<byte>((byte*)chunk + (offset & (ChunkSize - 1)), n));
            MarkWritten(offset, n);
            source = source[n..];
            offset += n;
        }

        return true;
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        TryWrite(offset, source.Span, fua);
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// The device's own memory from <paramref name="offset"/> for up to <paramref name="length"/> bytes, cut at the end
    /// of its 2 MiB chunk, so a caller can receive a payload straight into it (one copy instead of two). The pages count
    /// as written from now on. The span is valid only while the device is not disposed.
    /// </summary>
    public Span<byte> WritableSpan(long offset, int length)
    {
        CheckRange(offset, length);
        var n = (int)Math.Min(length, ChunkSize - (offset & (ChunkSize - 1)));
        var chunk = MapChunk(offset >> ChunkShift);
        if (n > 0)
        {
            MarkWritten(offset, n);
        }

        return new Span<byte>((byte*)chunk + (offset & (ChunkSize - 1)), n);
    }

    /// <summary>Synchronous TRIM: whole pages go back to the kernel (madvise DONTNEED), partial ones are zeroed.</summary>
    public void Trim(long offset, long length) => Zero(offset, length, free: true);

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
        var end = offset + length;
        var runStart = offset;
        var runWritten = IsWritten(offset >> PageShift);
        var pos = offset;
        while (pos < end)
        {
            var page = pos >> PageShift;
            var written = IsWritten(page);
            if (written != runWritten)
            {
                extents[count++] = new AllocationExtent(pos - runStart, !runWritten, !runWritten);
                if (count == extents.Length)
                {
                    return count;
                }

                runStart = pos;
                runWritten = written;
            }

            // A chunk never mapped is one hole: skip it whole, so a sparse 64 GiB device answers quickly.
            pos = !written && Volatile.Read(ref _chunks[page >> (ChunkShift - PageShift)]) == 0
                ? Math.Min(end, ((pos >> ChunkShift) + 1) << ChunkShift)
                : Math.Min(end, (page + 1) << PageShift);
        }

        extents[count++] = new AllocationExtent(end - runStart, !runWritten, !runWritten);
        return count;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        for (var i = 0; i < _chunks.Length; i++)
        {
            if (_chunks[i] != 0)
            {
                NativeMemoryMap.Unmap((byte*)_chunks[i], (nuint)ChunkSize);
                _chunks[i] = 0;
            }
        }

        _allocatedPages = 0;
    }

    private nint MapChunk(long index)
    {
        var chunk = Volatile.Read(ref _chunks[index]);
        if (chunk != 0)
        {
            return chunk;
        }

        var mapped = (nint)NativeMemoryMap.Map((nuint)ChunkSize);
        var existing = Interlocked.CompareExchange(ref _chunks[index], mapped, 0);
        if (existing == 0)
        {
            return mapped;
        }

        NativeMemoryMap.Unmap((byte*)mapped, (nuint)ChunkSize);
        return existing;
    }

    private bool IsWritten(long page) => (Volatile.Read(ref _written[page >> 6]) & (1UL << (int)(page & 63))) != 0;

    private void MarkWritten(long offset, long length)
    {
        for (var page = offset >> PageShift; page <= (offset + length - 1) >> PageShift;)
        {
            // Whole 64-page words at a time where the range allows.
            var bit = (int)(page & 63);
            var last = Math.Min((offset + length - 1) >> PageShift, page - bit + 63);
            var span = (int)(last - page + 1);
            var mask = span == 64 ? ulong.MaxValue : ((1UL << span) - 1) << bit;
            var before = Interlocked.Or(ref _written[page >> 6], mask);
            var added = BitOperations.PopCount(mask & ~before);
            if (added != 0)
            {
                Interlocked.Add(ref _allocatedPages, added);
            }

            page = last + 1;
        }
    }

    private void ClearWritten(long firstPage, long lastPage)
    {
        for (var page = firstPage; page <= lastPage;)
        {
            var bit = (int)(page & 63);
            var last = Math.Min(lastPage, page - bit + 63);
            var span = (int)(last - page + 1);
            var mask = span == 64 ? ulong.MaxValue : ((1UL << span) - 1) << bit;
            var before = Interlocked.And(ref _written[page >> 6], ~mask);
            var removed = BitOperations.PopCount(mask & before);
            if (removed != 0)
            {
                Interlocked.Add(ref _allocatedPages, -removed);
            }

            page = last + 1;
        }
    }

    private void Zero(long offset, long length, bool free)
    {
        CheckRange(offset, length);
        var end = offset + length;
        while (offset < end)
        {
            var n = Math.Min(end - offset, ChunkSize - (offset & (ChunkSize - 1)));
            var index = offset >> ChunkShift;
            var chunk = Volatile.Read(ref _chunks[index]);
            if (chunk == 0 && free)
            {
                // Never written: already a hole.
                offset += n;
                continue;
            }

            if (chunk == 0)
            {
                chunk = MapChunk(index);
            }

            var start = (byte*)chunk + (offset & (ChunkSize - 1));
            if (!free)
            {
                // NO_HOLE: the zeroes must be stored, so the pages stay (or become) committed.
                new Span<byte>(start, (int)n).Clear();
                MarkWritten(offset, n);
            }
            else
            {
                // Whole pages go back to the kernel; the partial pages at either end are cleared in place.
                var firstWhole = (offset + PageSize - 1) & ~(long)(PageSize - 1);
                var endWhole = (offset + n) & ~(long)(PageSize - 1);
                if (endWhole > firstWhole)
                {
                    ClearWritten(firstWhole >> PageShift, (endWhole >> PageShift) - 1);
                    NativeMemoryMap.Discard((byte*)chunk + (firstWhole & (ChunkSize - 1)), (nuint)(endWhole - firstWhole));
                    new Span<byte>(start, (int)(firstWhole - offset)).Clear();
                    new Span<byte>((byte*)chunk + (endWhole & (ChunkSize - 1)), (int)(offset + n - endWhole)).Clear();
                }
                else
                {
                    new Span<byte>(start, (int)n).Clear();
                }
            }

            offset += n;
        }
    }

    private void CheckRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new BlockDeviceException(BlockDeviceError.Invalid, $"range {offset}+{length} is outside the device (size {Size})");
        }
    }
}
