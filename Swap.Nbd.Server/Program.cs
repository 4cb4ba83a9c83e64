using Swap.Nbd.Server.Hosting;

return await ServerCommand.RunAsync(args).ConfigureAwait(false);
