using System.Runtime.InteropServices;
using Swap.Nbd.Client.Cli;

using var interrupt = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
{
    // First Ctrl+C ends a benchmark early with its results; a second one kills the process as usual.
    context.Cancel = !interrupt.IsCancellationRequested;
    interrupt.Cancel();
});
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    // attach --persist ends cleanly and leaves its device attached.
    context.Cancel = true;
    interrupt.Cancel();
});
return await ClientCli.RunAsync(args, Console.Out, Console.Error, interrupt.Token).ConfigureAwait(false);
