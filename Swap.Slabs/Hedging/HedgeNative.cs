using System.Runtime.InteropServices;

namespace Swap.Slabs.Hedging;

/// <summary>
/// The libc calls the hedge sweeper needs for sleeps shorter than a millisecond (every .NET wait counts whole
/// milliseconds, and a hedging bound is a few hundred microseconds).
/// </summary>
internal static partial class HedgeNative
{
    private const int ClockMonotonic = 1;
    private const int PrSetTimerSlack = 29;

    /// <summary>Sleeps about <paramref name="nanoseconds"/> (a signal may cut it short, which the caller's loop absorbs).</summary>
    public static unsafe void Sleep(long nanoseconds)
    {
        var request = stackalloc long[2];
        request[0] = nanoseconds / 1_000_000_000;
        request[1] = nanoseconds % 1_000_000_000;
        _ = clock_nanosleep(ClockMonotonic, 0, request, null);
    }

    /// <summary>
    /// The calling thread's timer slack: how late the kernel may wake it to batch wake-ups (50 µs by default, a
    /// sizeable part of a hedging bound). Best effort; false if the kernel refused.
    /// </summary>
    public static bool SetTimerSlack(long nanoseconds) => prctl(PrSetTimerSlack, (nuint)nanoseconds, 0, 0, 0) == 0;

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int clock_nanosleep(int clock, int flags, long* request, long* remain);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
