using Swap.Slabs.Daemon;

return await DaemonCommand.RunAsync(args).ConfigureAwait(false);
