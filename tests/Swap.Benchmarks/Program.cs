using BenchmarkDotNet.Running;
using Swap.Benchmarks.Server;

// --alloc-check measures whole-process allocation per request on the end-to-end path, which a per-thread
// counter cannot see because the server's work runs on thread-pool threads.
if (args.Contains("--alloc-check"))
{
    return await AllocationCheck.RunAsync().ConfigureAwait(false);
}

BenchmarkSwitcher.FromAssembly(typeof(AllocationCheck).Assembly).Run(args);
return 0;
