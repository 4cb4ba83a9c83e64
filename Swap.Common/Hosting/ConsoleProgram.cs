using System.Runtime.InteropServices;

namespace Swap.Common.Hosting;

/// <summary>What swapnbd-server and swapnbd-daemon share as executables: exit codes, error reporting, stop signals.</summary>
public static class ConsoleProgram
{
    public const int ExitOk = 0;
    public const int ExitConfig = 2;
    public const int ExitStartFailed = 3;

    /// <summary>Prints every configuration error as one line naming the program; true if there were any.</summary>
    public static bool ReportConfigErrors(string program, IReadOnlyList<string> errors)
    {
        foreach (var error in errors)
        {
            Console.Error.WriteLine($"{program}: configuration error: {error}");
        }

        if (errors.Count > 0)
        {
            Console.Error.WriteLine($"{program}: see --help");
        }

        return errors.Count > 0;
    }

    /// <summary>
    /// Takes over SIGTERM and SIGINT until disposed: they complete <see cref="StopSignal.Received"/> instead of ending
    /// the process, so a second signal during a graceful stop does not cut it short.
    /// </summary>
    public static StopSignal ListenForStop() => new();

    /// <summary>SIGTERM/SIGINT handling for the lifetime of a run.</summary>
    public sealed class StopSignal : IDisposable
    {
        private readonly TaskCompletionSource _received = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly PosixSignalRegistration _sigterm;
        private readonly PosixSignalRegistration _sigint;

        internal StopSignal()
        {
            _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
            _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        }

        public Task Received => _received.Task;

        public void Dispose()
        {
            _sigterm.Dispose();
            _sigint.Dispose();
        }

        private void Handle(PosixSignalContext context)
        {
            context.Cancel = true;
            _received.TrySetResult();
        }
    }
}
