using System.Runtime.CompilerServices;

namespace Swap.Common.Hosting;

/// <summary>
/// Runs a per-thread system call (PR_SET_IO_FLUSHER, sched_setscheduler) on the runtime's finalizer thread, which
/// starts before Main and so does not inherit what Main set for the threads it starts (measured in the whole-machine
/// guest: the one server thread without each).
/// </summary>
internal static class FinalizerThreadCall
{
    private const int NotRun = int.MinValue;
    private static readonly Lock Gate = new();
    private static Func<int>? s_call;
    private static int s_errno = NotRun;

    /// <summary>
    /// Runs <paramref name="call"/> on the finalizer thread, from the finalizer of an object dropped at once, and waits
    /// for it. Returns its errno (0 done), or null if no finalizer ran (a runtime without a finalizer thread has
    /// nothing to mark).
    /// </summary>
    public static int? Run(Func<int> call)
    {
        lock (Gate)
        {
            s_call = call;
            s_errno = NotRun;
            DropMarker();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var errno = Volatile.Read(ref s_errno);
            s_call = null;
            return errno == NotRun ? null : errno;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropMarker() => GC.KeepAlive(new Marker());

    private sealed class Marker
    {
        ~Marker()
        {
            if (Volatile.Read(ref s_call) is { } call)
            {
                Volatile.Write(ref s_errno, call());
            }
        }
    }
}
