using System.Runtime.InteropServices;

namespace Swap.BlockDevices;

/// <summary>Anonymous memory mappings from libc: reserved at once, committed page by page as touched, handed back with madvise.</summary>
internal static partial class NativeMemoryMap
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int MapPrivate = 0x02;
    private const int MlockOnFault = 1;
    private const int MapAnonymous = 0x20;
    private const int MapNoReserve = 0x4000;
    private const int MadvDontNeed = 4;

    public static unsafe byte* Map(nuint length)
    {
        var p = mmap(null, length, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        if (p == (void*)-1)
        {
            throw new BlockDeviceException(BlockDeviceError.NoSpace, $"mmap of {length} bytes failed (errno {Marshal.GetLastPInvokeError()})");
        }

        return (byte*)p;
    }

    public static unsafe void Unmap(byte* address, nuint length) => _ = munmap(address, length);

    /// <summary>Gives the pages back to the kernel; they read as zero afterwards.</summary>
    public static unsafe void Discard(byte* address, nuint length)
    {
        if (madvise(address, length, MadvDontNeed) == 0)
        {
            return;
        }

        // Locked pages (mlockall) refuse MADV_DONTNEED with EINVAL: unlock, drop, and lock the range again the way
        // MCL_FUTURE|MCL_ONFAULT had it, page by page as it is written. (Mapping fresh memory over the range with
        // MAP_FIXED would be one call, but on older kernels a failure there leaves a hole.)
        if (munlock(address, length) == 0)
        {
            var dropped = madvise(address, length, MadvDontNeed) == 0;
            _ = mlock2(address, length, MlockOnFault);
            if (dropped)
            {
                return;
            }
        }

        // The kernel could not split the mapping (out of memory or map count): keep the pages, but they must read zero.
        new Span<byte>(address, checked((int)length)).Clear();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial void* mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int munlock(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int mlock2(void* address, nuint length, uint flags);
}
