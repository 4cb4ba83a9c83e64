using System.Runtime.InteropServices;

namespace Swap.Nbd.Tests.Support;

/// <summary>How much of a file sits in the page cache right now (mmap + mincore, what fincore does).</summary>
internal static partial class PageCacheResidency
{
    private const int ProtRead = 1;
    private const int MapShared = 1;

    public static unsafe long Bytes(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var length = RandomAccess.GetLength(handle);
        if (length == 0)
        {
            return 0;
        }

        var page = Environment.SystemPageSize;
        var pages = (length + page - 1) / page;
        var address = mmap(null, (nuint)length, ProtRead, MapShared, (int)handle.DangerousGetHandle(), 0);
        if (address == (void*)-1)
        {
            throw new IOException($"mmap {path}: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            var vector = new byte[pages];
            fixed (byte* v = vector)
            {
                if (mincore(address, (nuint)length, v) != 0)
                {
                    throw new IOException($"mincore {path}: errno {Marshal.GetLastPInvokeError()}");
                }
            }

            return vector.LongCount(b => (b & 1) != 0) * page;
        }
        finally
        {
            _ = munmap(address, (nuint)length);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial void* mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int mincore(void* address, nuint length, byte* vector);
}
