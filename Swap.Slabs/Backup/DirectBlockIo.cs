using Microsoft.Win32.SafeHandles;

namespace Swap.Slabs.Backup;

/// <summary>
/// Reads and writes of any offset and length on a file opened with O_DIRECT, which itself takes only whole aligned
/// blocks from aligned memory: aligned requests from aligned memory go straight to pread/pwrite, the rest through
/// pre-allocated aligned bounce buffers in chunks, with read-modify-write of partly written edge blocks under
/// per-block locks. Failures throw <see cref="IOException"/>.
/// </summary>
internal sealed unsafe class DirectBlockIo : IDisposable
{
    /// <summary>Bounce buffers: 8 × 256 KiB (2 MiB, locked) whatever the number of requests in flight; a ninth caller waits.</summary>
    public const int DefaultBuffers = 8;
    public const int DefaultBufferSize = 256 * 1024;

    /// <summary>The largest direct I/O a block device does without allocating (DIO_INLINE_BIO_VECS = 4 pages).</summary>
    public const int NoAllocationPieceSize = 16 * 1024;

    private readonly SafeFileHandle _handle;
    private readonly AlignedBufferPool _pool;
    private readonly BlockStripeLocks _locks = new();
    private readonly long _blockMask;
    private readonly nint _memoryMask;
    private readonly int _blockShift;

    /// <param name="alignment">Offsets and lengths are multiples of this (a power of two: the logical block size).</param>
    /// <param name="memoryAlignment">Memory handed to the kernel starts at a multiple of this (a power of two); bounce buffers are page-aligned.</param>
    public DirectBlockIo(SafeFileHandle handle, int alignment, int memoryAlignment, int buffers = DefaultBuffers, int bufferSize = DefaultBufferSize)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0 || memoryAlignment <= 0 || (memoryAlignment & (memoryAlignment - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), $"alignments {alignment}/{memoryAlignment} must be powers of two");
        }

        _handle = handle;
        Alignment = alignment;
        _blockMask = alignment - 1;
        _memoryMask = memoryAlignment - 1;
        _blockShift = System.Numerics.BitOperations.Log2((uint)alignment);
        var bufferAlignment = Math.Max(Math.Max(alignment, memoryAlignment), Environment.SystemPageSize);
        _pool = new AlignedBufferPool(buffers, Math.Max(bufferSize, bufferAlignment) / bufferAlignment * bufferAlignment, bufferAlignment);
    }

    public int Alignment { get; }

    /// <summary>Bytes of bounce buffers held (allocated, touched and locked at construction).</summary>
    public long BufferBytes => (long)_pool.Count * _pool.BufferSize;

    /// <summary>
    /// The next bounce-buffer chunk of [<paramref name="position"/>, <paramref name="end"/>): the aligned blocks it
    /// covers (from the block holding <paramref name="position"/>, at most one buffer long) and where its data ends.
    /// </summary>
    private (long BlockStart, long CoverEnd, long DataEnd) Chunk(long position, long end)
    {
        var blockStart = position & ~_blockMask;
        var coverEnd = Math.Min(AlignUp(end), blockStart + _pool.BufferSize);
        return (blockStart, coverEnd, Math.Min(end, coverEnd));
    }

    public void Read(long offset, Span<byte> destination)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        if (IsDirect(offset, destination))
        {
            ReadExact(destination, offset);
            return;
        }

        var index = _pool.Rent(out var buffer);
        try
        {
            var end = offset + destination.Length;
            var position = offset;
            while (position < end)
            {
                var (blockStart, coverEnd, dataEnd) = Chunk(position, end);
                var bounce = new Span<byte>(buffer, (int)(coverEnd - blockStart));
                ReadExact(bounce, blockStart);
                bounce.Slice((int)(position - blockStart), (int)(dataEnd - position)).CopyTo(destination[(int)(position - offset)..]);
                position = dataEnd;
            }
        }
        finally
        {
            _pool.Return(index);
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
        {
            return;
        }

        if (IsDirect(offset, source))
        {
            RandomAccess.Write(_handle, source, offset);
            return;
        }

        var index = _pool.Rent(out var buffer);
        try
        {
            var end = offset + source.Length;
            var position = offset;
            while (position < end)
            {
                var (blockStart, coverEnd, dataEnd) = Chunk(position, end);
                var bounce = new Span<byte>(buffer, (int)(coverEnd - blockStart));
                var data = source.Slice((int)(position - offset), (int)(dataEnd - position));
                var headPartial = blockStart < position;
                var tailPartial = coverEnd > dataEnd;
                if (headPartial || tailPartial)
                {
                    WriteEdges(bounce, blockStart, coverEnd, data, (int)(position - blockStart), headPartial, tailPartial);
                }
                else
                {
                    data.CopyTo(bounce);
                    RandomAccess.Write(_handle, bounce, blockStart);
                }

                position = dataEnd;
            }
        }
        finally
        {
            _pool.Return(index);
        }
    }

    public void Dispose() => _pool.Dispose();

    /// <summary>Read-modify-write of a chunk whose first or last block is only partly written, under those blocks' locks.</summary>
    private void WriteEdges(Span<byte> bounce, long blockStart, long coverEnd, ReadOnlySpan<byte> data, int dataOffset, bool headPartial, bool tailPartial)
    {
        var headBlock = blockStart >> _blockShift;
        var tailBlock = (coverEnd >> _blockShift) - 1;
        _locks.Enter(headPartial ? headBlock : tailBlock, tailPartial ? tailBlock : headBlock, out var first, out var second);
        try
        {
            if (headPartial)
            {
                ReadExact(bounce[..Alignment], blockStart);
            }

            if (tailPartial && !(headPartial && tailBlock == headBlock))
            {
                ReadExact(bounce[^Alignment..], coverEnd - Alignment);
            }

            data.CopyTo(bounce[dataOffset..]);
            RandomAccess.Write(_handle, bounce, blockStart);
        }
        finally
        {
            _locks.Exit(first, second);
        }
    }

    private bool IsDirect(long offset, ReadOnlySpan<byte> span)
    {
        if (((offset | (long)span.Length) & _blockMask) != 0)
        {
            return false;
        }

        fixed (byte* address = span)
        {
            return ((nint)address & _memoryMask) == 0;
        }
    }

    private void ReadExact(Span<byte> destination, long offset)
    {
        var done = 0;
        while (done < destination.Length)
        {
            var n = RandomAccess.Read(_handle, destination[done..], offset + done);
            if (n == 0)
            {
                throw new IOException($"unexpected end of file after {done} bytes (was the file truncated?)");
            }

            done += n;
        }
    }

    private long AlignUp(long value) => (value + _blockMask) & ~_blockMask;
}
