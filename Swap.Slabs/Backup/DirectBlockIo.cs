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

    // One AIO context per bounce buffer (whoever holds the buffer holds its context), or null: no batches.
    private readonly LinuxAio?[]? _aio;

    /// <param name="alignment">Offsets and lengths are multiples of this (a power of two: the logical block size).</param>
    /// <param name="memoryAlignment">Memory handed to the kernel starts at a multiple of this (a power of two); bounce buffers are page-aligned.</param>
    /// <param name="batches">Make an AIO context per bounce buffer so <see cref="WriteMany"/> keeps a batch in flight at once.</param>
    public DirectBlockIo(SafeFileHandle handle, int alignment, int memoryAlignment, int buffers = DefaultBuffers, int bufferSize = DefaultBufferSize, bool batches = false)
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
        if (batches)
        {
            _aio = new LinuxAio?[buffers];
            for (var i = 0; i < buffers; i++)
            {
                _aio[i] = LinuxAio.TryCreate(MaxBatch, out var errno);
                if (_aio[i] is null)
                {
                    AioRefusal = BackupDiskNative.Describe(errno);
                    DisposeAio();
                    _aio = null;
                    break;
                }
            }
        }
    }

    /// <summary>Writes one AIO batch holds at most.</summary>
    public const int MaxBatch = 64;

    /// <summary>Bounce buffers one batch takes at most (beyond the first only those free at the time).</summary>
    private const int MaxBuffersPerBatch = 4;

    /// <summary>True when <see cref="WriteMany"/> keeps a batch in flight at once (native AIO); false: one by one.</summary>
    public bool Batches => _aio is not null;

    /// <summary>Why batches were asked for and are not possible (io_setup's error), else null.</summary>
    public string? AioRefusal { get; }

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

    /// <summary>
    /// Writes that do not overlap, all in flight at once: copied into a bounce buffer and submitted together (native
    /// AIO), up to a buffer's worth or <see cref="MaxBatch"/> writes per submission. <paramref name="errnos"/>[i] gets
    /// write i's errno, or 0. Writes not aligned to the block size, and every write when batches are off, go one by
    /// one through <see cref="Write"/>.
    /// </summary>
    public void WriteMany(ReadOnlySpan<Swap.BlockDevices.BlockWrite> writes, Span<int> errnos)
    {
        if (_aio is null)
        {
            for (var i = 0; i < writes.Length; i++)
            {
                errnos[i] = WriteOne(writes[i]);
            }

            return;
        }

        // Writes the batch cannot take go one by one first, before the batch holds any bounce buffer (Write rents one,
        // and a caller holding several while waiting for another could wait forever).
        var batched = 0;
        for (var i = 0; i < writes.Length; i++)
        {
            if (!FitsAio(writes[i].Offset, writes[i].Data.Length))
            {
                errnos[i] = WriteOne(writes[i]);
            }
            else
            {
                errnos[i] = Pending;
                batched++;
            }
        }

        if (batched == 0)
        {
            return;
        }

        Span<long> results = stackalloc long[MaxBatch];
        Span<int> owners = stackalloc int[MaxBatch];
        Span<int> rented = stackalloc int[MaxBuffersPerBatch];
        var held = 0;
        rented[held++] = _pool.Rent(out var buffer);
        var aio = _aio[rented[0]]!;
        var added = false;
        var reusable = true;
        try
        {
            _handle.DangerousAddRef(ref added);
            var fd = (int)_handle.DangerousGetHandle();
            var next = 0;
            while (next < writes.Length)
            {
                // Copied into the batch's buffers (a payload in the connection's input is not aligned in memory): the
                // first one rented, more while free ones are at hand, up to MaxBuffersPerBatch.
                var used = 0;
                var current = buffer;
                while (next < writes.Length && aio.Count < aio.Capacity)
                {
                    var write = writes[next];
                    var length = write.Data.Length;
                    if (errnos[next] != Pending)
                    {
                        next++;
                        continue;
                    }

                    if (used + length > _pool.BufferSize)
                    {
                        if (held == rented.Length || (rented[held] = _pool.TryRent(out var more)) < 0)
                        {
                            break;
                        }

                        held++;
                        current = more;
                        used = 0;
                    }

                    write.Data.Span.CopyTo(new Span<byte>(current + used, length));
                    owners[aio.Count] = next;
                    aio.AddWrite(fd, current + used, length, write.Offset, aio.Count);
                    used += length;
                    next++;
                }

                var count = aio.Count;
                reusable = false;
                aio.SubmitAndWait(results);
                reusable = true;
                for (var k = 0; k < count; k++)
                {
                    var owner = owners[k];
                    var result = results[k];
                    errnos[owner] = result == writes[owner].Data.Length ? 0 : result < 0 ? (int)-result : Short;
                }

                // The next round starts over in the first buffer.
                while (held > 1)
                {
                    _pool.Return(rented[--held]);
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }

            // A batch whose completion was never seen may still be written from the buffers: they are not handed out again.
            while (reusable && held > 0)
            {
                _pool.Return(rented[--held]);
            }
        }

        for (var i = 0; i < writes.Length; i++)
        {
            if (errnos[i] == Short)
            {
                // Short (the disk filled mid-write, say): written again whole, one by one, which reports why.
                errnos[i] = WriteOne(writes[i]);
            }
        }
    }

    /// <summary>A write AIO can take from a bounce buffer: not empty, block-aligned, at most one buffer long.</summary>
    private bool FitsAio(long offset, int length) => length > 0 && ((offset | (long)length) & _blockMask) == 0 && length <= _pool.BufferSize;

    private const int Pending = -1;
    private const int Short = -2;

    /// <summary>
    /// One write submitted (native AIO, from a bounce buffer) and <paramref name="work"/> run while the disk has it,
    /// then the completion waited for. Without batches, or for a write not aligned to the block size or larger than
    /// a bounce buffer, the work runs first and the write then goes through <see cref="Write"/>. Failures throw
    /// <see cref="IOException"/> whose HResult is the errno; the work has run either way.
    /// </summary>
    public void WriteWhile<TWork>(long offset, ReadOnlySpan<byte> source, ref TWork work)
        where TWork : IWhileWriting, allows ref struct
    {
        if (_aio is null || !FitsAio(offset, source.Length))
        {
            work.Run();
            Write(offset, source);
            return;
        }

        var index = _pool.Rent(out var buffer);
        var aio = _aio[index]!;
        var added = false;
        var inFlight = false;
        long result;
        try
        {
            _handle.DangerousAddRef(ref added);
            source.CopyTo(new Span<byte>(buffer, source.Length));
            aio.AddWrite((int)_handle.DangerousGetHandle(), buffer, source.Length, offset, 0);
            var errno = aio.SubmitOne();
            inFlight = errno == 0;
            try
            {
                work.Run();
            }
            finally
            {
                result = inFlight ? aio.WaitOne() : -errno;
                inFlight = false;
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }

            // A write whose completion was never seen may still read the buffer: it is not handed out again.
            if (!inFlight)
            {
                _pool.Return(index);
            }
        }

        if (result == source.Length)
        {
            return;
        }

        if (result < 0 && result != -ErrnoAgain)
        {
            throw new IOException($"write failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)-result)} (errno {-result})", (int)-result);
        }

        // Short, or the kernel had no room to take it (EAGAIN): written again whole, synchronously, which reports why.
        Write(offset, source);
    }

    private const int ErrnoAgain = 11;

    public void Dispose()
    {
        DisposeAio();
        _pool.Dispose();
    }

    private void DisposeAio()
    {
        if (_aio is not null)
        {
            foreach (var aio in _aio)
            {
                aio?.Dispose();
            }
        }
    }

    /// <summary>One write through <see cref="Write"/>: 0, or its errno.</summary>
    private int WriteOne(in Swap.BlockDevices.BlockWrite write)
    {
        try
        {
            Write(write.Offset, write.Data.Span);
            return 0;
        }
        catch (IOException ex)
        {
            return ex.HResult is > 0 and < 4096 ? ex.HResult : EIO;
        }
        catch (UnauthorizedAccessException)
        {
            return EACCES;
        }
    }

    private const int EIO = 5;
    private const int EACCES = 13;

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
