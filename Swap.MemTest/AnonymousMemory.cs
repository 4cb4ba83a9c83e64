using System.Runtime.InteropServices;

namespace Swap.MemTest;

/// <summary>
/// Private anonymous memory straight from mmap: the pages the kernel swaps out and back. Transparent huge pages are
/// turned off for it, so every 4 KiB page is swapped on its own as a real workload's would be under pressure.
/// </summary>
public sealed unsafe partial class AnonymousMemory : IDisposable
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MapNoReserve = 0x4000;
    private const int MadvNoHugePage = 15;

    private byte* _address;

    public AnonymousMemory(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        Length = length;
        var p = mmap(null, (nuint)length, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        if (p == (void*)-1)
        {
            throw new InsufficientMemoryException($"mmap of {length} bytes failed (errno {Marshal.GetLastPInvokeError()})");
        }

        _address = (byte*)p;
        _ = madvise(p, (nuint)length, MadvNoHugePage); // best effort: kernels without THP refuse it
    }

    public long Length { get; }

    /// <summary>The 4 KiB page number <paramref name="index"/>.</summary>
    public Span<byte> Page(long index)
    {
        ObjectDisposedException.ThrowIf(_address is null, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((ulong)index, (ulong)(Length / PagePattern.PageSize), nameof(index));
        return new Span<byte>(_address + (index * PagePattern.PageSize), PagePattern.PageSize);
    }

    /// <summary>Element <paramref name="index"/> of the memory seen as 32-bit words (the version table lives in one of these too).</summary>
    public ref uint Word(long index)
    {
        ObjectDisposedException.ThrowIf(_address is null, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((ulong)index, (ulong)(Length / sizeof(uint)), nameof(index));
        return ref ((uint*)_address)[index];
    }

    public void Dispose()
    {
        if (_address is not null)
        {
            _ = munmap(_address, (nuint)Length);
            _address = null;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* address, nuint length, int advice);
}
