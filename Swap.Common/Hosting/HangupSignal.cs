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
    private const nint SigDfl = 0;

    /// <summary>
    /// Registers <paramref name="handler"/> for SIGHUP (the hang-up no longer ends the process), after putting back
    /// the default disposition in case SIGHUP was ignored.
    /// </summary>
    public static PosixSignalRegistration Register(Action<PosixSignalContext> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        // The default first (whatever it was), then the registration installs .NET's handler over it.
        _ = signal(SigHup, SigDfl);
        return PosixSignalRegistration.Create(PosixSignal.SIGHUP, handler);
    }

    [LibraryImport("libc")]
    private static partial nint signal(int signum, nint handler);
}
