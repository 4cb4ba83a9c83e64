using System.Runtime.InteropServices;

namespace Swap.Common.Hosting;

/// <summary>
/// SIGHUP as a reload request even when the process was started with it ignored (nohup, some supervisors and
/// shells): an ignored disposition is inherited across exec, and .NET then never calls a
/// <see cref="PosixSignalRegistration"/> for it, so a reload would do nothing, silently.
/// </summary>
public static partial class HangupSignal
{
    private const int SigHup = 1;
    private static readonly nint SigDfl = 0;
    private static readonly nint SigIgn = 1;

    /// <summary>
    /// Registers <paramref name="handler"/> for SIGHUP (the hang-up no longer ends the process), after putting back
    /// the default disposition if SIGHUP was ignored. <paramref name="wasIgnored"/>: it was, and now is not.
    /// </summary>
    public static PosixSignalRegistration Register(Action<PosixSignalContext> handler, out bool wasIgnored)
    {
        ArgumentNullException.ThrowIfNull(handler);
        // signal() returns the previous disposition; set to default first, then the registration installs .NET's handler.
        var previous = signal(SigHup, SigDfl);
        wasIgnored = previous == SigIgn;
        return PosixSignalRegistration.Create(PosixSignal.SIGHUP, handler);
    }

    [LibraryImport("libc")]
    private static partial nint signal(int signum, nint handler);
}
