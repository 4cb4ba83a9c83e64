using System.Runtime.InteropServices;

namespace Swap.Slabs.Backup;

/// <summary>
/// One Linux native AIO context (io_setup) with its control blocks made once: a batch of direct writes at different
/// offsets goes to the disk in one io_submit and is waited for in one io_getevents, so the device works on all of
/// them at once (one round trip and one notification for the batch, where pwrite took one of each per write).
/// Not thread-safe: one caller at a time (<see cref="DirectBlockIo"/> gives each bounce buffer its own context).
/// </summary>
internal sealed unsafe partial class LinuxAio : IDisposable
{
    private const int IocbSize = 64;
    private const int EventSize = 32;
    private const ushort CommandWrite = 1; // IOCB_CMD_PWRITE
    private const int ErrnoInterrupted = 4;
    private const int ErrnoAgain = 11;

    private readonly byte* _iocbs;
    private readonly byte** _iocbPointers;
    private readonly byte* _events;
    private nuint _context;
    private int _count;

    private LinuxAio(int capacity, nuint context)
    {
        Capacity = capacity;
        _context = context;
        _iocbs = (byte*)NativeMemory.AllocZeroed((nuint)(capacity * IocbSize));
        _iocbPointers = (byte**)NativeMemory.AllocZeroed((nuint)(capacity * sizeof(nint)));
        _events = (byte*)NativeMemory.AllocZeroed((nuint)(capacity * EventSize));
        for (var i = 0; i < capacity; i++)
        {
            _iocbPointers[i] = _iocbs + (i * IocbSize);
        }
    }

    /// <summary>Writes one batch may hold.</summary>
    public int Capacity { get; }

    /// <summary>Writes added since the last <see cref="SubmitAndWait"/>.</summary>
    public int Count => _count;

    /// <summary>A context for <paramref name="capacity"/> writes at a time, or null (with the errno) where the kernel has no AIO or no room for another context (fs.aio-max-nr).</summary>
    public static LinuxAio? TryCreate(int capacity, out int errno)
    {
        nuint context = 0;
        if (Syscall(Numbers.Setup, capacity, (nint)(&context), 0, 0, 0) < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        errno = 0;
        return new LinuxAio(capacity, context);
    }

    /// <summary>Adds a write of <paramref name="length"/> bytes from aligned memory at <paramref name="buffer"/> to the batch; <paramref name="tag"/> comes back with its result.</summary>
    public void AddWrite(int fd, byte* buffer, int length, long offset, int tag)
    {
        if (_count == Capacity)
        {
            throw new InvalidOperationException("the AIO batch is full");
        }

        // struct iocb (linux/aio_abi.h), little-endian x86-64 / arm64 layout.
        var iocb = _iocbs + (_count * IocbSize);
        new Span<byte>(iocb, IocbSize).Clear();
        *(ulong*)iocb = (ulong)tag;                 // aio_data
        *(ushort*)(iocb + 16) = CommandWrite;       // aio_lio_opcode
        *(uint*)(iocb + 20) = (uint)fd;             // aio_fildes
        *(ulong*)(iocb + 24) = (ulong)buffer;       // aio_buf
        *(ulong*)(iocb + 32) = (ulong)length;       // aio_nbytes
        *(long*)(iocb + 40) = offset;               // aio_offset
        _count++;
    }

    /// <summary>
    /// Submits the batch and waits until every write in it has completed; <paramref name="results"/>[tag] gets each
    /// write's result: the bytes written, or -errno (for writes the kernel would not take, io_submit's). Returns with
    /// the batch empty.
    /// </summary>
    public void SubmitAndWait(Span<long> results)
    {
        try
        {
            var submitted = 0;
            while (submitted < _count)
            {
                var n = Syscall(Numbers.Submit, (nint)_context, _count - submitted, (nint)(_iocbPointers + submitted), 0, 0);
                if (n >= 0)
                {
                    submitted += (int)n;
                    continue;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == ErrnoInterrupted)
                {
                    continue;
                }

                if (errno == ErrnoAgain && submitted > 0)
                {
                    // No room for more in flight: reap what is out, then submit the rest.
                    Reap(submitted, results);
                    Compact(submitted);
                    submitted = 0;
                    continue;
                }

                for (var i = submitted; i < _count; i++)
                {
                    results[(int)*(ulong*)_iocbPointers[i]] = -errno;
                }

                break;
            }

            Reap(submitted, results);
        }
        finally
        {
            _count = 0;
        }
    }

    /// <summary>
    /// Submits the one write added, without waiting: 0, or io_submit's errno (then nothing is in flight and the batch
    /// is empty). Wait for it with <see cref="WaitOne"/>.
    /// </summary>
    public int SubmitOne()
    {
        if (_count != 1)
        {
            throw new InvalidOperationException("SubmitOne needs exactly one write added");
        }

        while (true)
        {
            if (Syscall(Numbers.Submit, (nint)_context, 1, (nint)_iocbPointers, 0, 0) == 1)
            {
                return 0;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != ErrnoInterrupted)
            {
                _count = 0;
                return errno;
            }
        }
    }

    /// <summary>Waits for the write <see cref="SubmitOne"/> submitted: its result, the bytes written or -errno. The batch is empty after.</summary>
    public long WaitOne()
    {
        Span<long> result = stackalloc long[1];
        try
        {
            Reap(1, result);
            return result[0];
        }
        finally
        {
            _count = 0;
        }
    }

    public void Dispose()
    {
        if (_context != 0)
        {
            Syscall(Numbers.Destroy, (nint)_context, 0, 0, 0, 0);
            _context = 0;
            NativeMemory.Free(_iocbs);
            NativeMemory.Free(_iocbPointers);
            NativeMemory.Free(_events);
        }
    }

    /// <summary>Waits for all <paramref name="inFlight"/> submitted writes and records their results.</summary>
    private void Reap(int inFlight, Span<long> results)
    {
        var done = 0;
        while (done < inFlight)
        {
            var n = Syscall(Numbers.GetEvents, (nint)_context, inFlight - done, inFlight - done, (nint)_events, 0);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == ErrnoInterrupted)
                {
                    continue;
                }

                // Cannot happen with a valid context; the writes' memory must not be reused while the kernel may still use it.
                throw new IOException($"io_getevents failed: {BackupDiskNative.Describe(errno)}");
            }

            for (var i = 0; i < n; i++)
            {
                // struct io_event: data, obj, res, res2.
                var io = _events + (i * EventSize);
                results[(int)*(ulong*)io] = *(long*)(io + 16);
            }

            done += (int)n;
        }
    }

    /// <summary>Moves the writes not yet submitted (from <paramref name="submitted"/>) to the front of the batch.</summary>
    private void Compact(int submitted)
    {
        for (var i = submitted; i < _count; i++)
        {
            var from = _iocbPointers[i];
            var to = _iocbPointers[i - submitted];
            if (from != to)
            {
                new ReadOnlySpan<byte>(from, IocbSize).CopyTo(new Span<byte>(to, IocbSize));
            }
        }

        _count -= submitted;
    }

    private static long Syscall(long number, nint a, nint b, nint c, nint d, nint e) => syscall(number, a, b, c, d, e);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, nint a, nint b, nint c, nint d, nint e);

    /// <summary>The AIO system call numbers of this machine's architecture.</summary>
    private static class Numbers
    {
        private static readonly bool Arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

        public static long Setup => Arm64 ? 0 : 206;

        public static long Destroy => Arm64 ? 1 : 207;

        public static long Submit => Arm64 ? 2 : 209;

        public static long GetEvents => Arm64 ? 4 : 208;
    }
}
