using System.Runtime.CompilerServices;

namespace Swap.Common.Hosting;

/// <summary>
/// PR_SET_IO_FLUSHER for the runtime's finalizer thread, which starts before Main and so does not inherit the flag
/// from the thread that set it (measured in the whole-machine guest: the one server thread without it).
/// </summary>
internal static class FinalizerThreadIoFlusher
{
    private const int NotRun = int.MinValue;
    private static int s_errno = NotRun;

    /// <summary>
    /// Runs prctl on the finalizer thread, from the finalizer of an object dropped at once, and waits for it. Returns
    /// its errno (0 done), or null if no finalizer ran (a runtime without a finalizer thread has nothing to mark).
    /// </summary>
    public static int? Set()
    {
        DropMarker();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var errno = Volatile.Read(ref s_errno);
        return errno == NotRun ? null : errno;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropMarker() => GC.KeepAlive(new Marker());

    private sealed class Marker
    {
        ~Marker() => Volatile.Write(ref s_errno, ProcessGuardNative.Prctl(ProcessGuardNative.PrSetIoFlusher, 1, out _));
    }
}
