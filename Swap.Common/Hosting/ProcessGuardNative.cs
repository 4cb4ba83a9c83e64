using System.Runtime.InteropServices;

namespace Swap.Common.Hosting;

/// <summary>The libc calls <see cref="ProcessGuard"/> makes: mlockall, prctl, getrlimit.</summary>
internal static partial class ProcessGuardNative
{
    public const int MclCurrent = 1;
    public const int MclFuture = 2;
    public const int MclOnFault = 4;
    public const int PrSetIoFlusher = 57;
    public const int PrGetIoFlusher = 58;
    private const int RlimitMemlock = 8;

    /// <summary>RLIMIT_MEMLOCK (soft, hard); <see cref="ulong.MaxValue"/> is RLIM_INFINITY.</summary>
    public static unsafe (ulong Soft, ulong Hard) MemlockLimit()
    {
        var limit = stackalloc ulong[2];
        return getrlimit(RlimitMemlock, limit) == 0 ? (limit[0], limit[1]) : (0, 0);
    }

    /// <summary>0, or the errno of the refusal.</summary>
    public static int LockAll(int flags) => mlockall(flags) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>0, or the errno of the refusal.</summary>
    public static int Prctl(int option, nuint argument, out int result)
    {
        result = prctl(option, argument, 0, 0, 0);
        return result >= 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public const int SchedRr = 2;

    /// <summary>0, or the errno of the refusal: the calling thread (and the threads it starts later) to <paramref name="policy"/>.</summary>
    public static unsafe int SetScheduler(int policy, int priority) =>
        sched_setscheduler(0, policy, &priority) == 0 ? 0 : Marshal.GetLastPInvokeError();

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int sched_setscheduler(int pid, int policy, int* param);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mlockall(int flags);

    // prctl is variadic in C; on the Linux ABIs .NET runs on, passing every argument as a register-sized integer is
    // the same call.
    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int getrlimit(int resource, ulong* limit);
}
