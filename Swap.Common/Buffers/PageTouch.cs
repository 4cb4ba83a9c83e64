using System.Runtime.InteropServices;

namespace Swap.Common.Buffers;

/// <summary>
/// Writes one byte in every page of a new array, so its pages exist (and, under mlockall with MCL_ONFAULT, are locked)
/// before the request path first writes it. An array of 85,000 bytes or more comes from the large or pinned object heap
/// on pages fresh from the kernel that the GC does not clear, so its first write is a page fault; on a host swapping to
/// this server that fault waits in reclaim for the very swap-out being served (seen in the whole-machine test: an
/// nbd-connection thread counting a write's pages in <c>UnsentWrites</c>, wp_page_copy → reclaim).
/// </summary>
public static class PageTouch
{
    private const int PageSize = 4096;

    /// <summary>Touches <paramref name="array"/> (new, so all zeroes: zero is written) and returns it.</summary>
    public static T[] Touched<T>(T[] array)
        where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(array.AsSpan());
        for (var offset = 0; offset < bytes.Length; offset += PageSize)
        {
            Volatile.Write(ref bytes[offset], 0);
        }

        return array;
    }
}
