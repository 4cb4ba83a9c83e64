Console.Error.WriteLine("swapnbd-client: not yet implemented");
return 1;
