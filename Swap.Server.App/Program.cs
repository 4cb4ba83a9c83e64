using Swap.Server;

return await ServerCommand.RunAsync(args).ConfigureAwait(false);
