using Swap.MemTest;

return MemTestCommand.Run(args, Console.Out, Console.Error);
