using System.Runtime.CompilerServices;

namespace Swap.Common.Hosting;

/// <summary>
/// Touches the first part of the calling thread's stack when an I/O thread starts. Under mlockall(MCL_ONFAULT) a
/// stack page is allocated (and locked) only when first reached, so a deeper call than any before (an error path, a
/// slab placed, a daemon lost) would otherwise take a page fault that, on a host swapping to this server, waits in
/// reclaim for the swap-out the thread is there to complete.
/// </summary>
public static class StackPrefault
{
    /// <summary>How much of the stack an I/O thread touches at start: far deeper than its calls go.</summary>
    public const int DefaultBytes = 256 * 1024;

    private const int PageSize = 4096;

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static unsafe void Touch(int bytes = DefaultBytes)
    {
        var stack = stackalloc byte[bytes];
        for (var offset = 0; offset < bytes; offset += PageSize)
        {
            Volatile.Write(ref stack[offset], 1);
        }
    }
}
