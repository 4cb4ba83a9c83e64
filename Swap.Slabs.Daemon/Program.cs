using Swap.Donor.Hosting;

return await DaemonCommand.RunAsync(args).ConfigureAwait(false);
