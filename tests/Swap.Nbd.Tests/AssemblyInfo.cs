using NUnit.Framework;

// Integration tests bind real sockets and start real processes; two cores do not gain from running them in parallel,
// so fixtures run one at a time unless they say otherwise. Pure (unit) fixtures say [Parallelizable]: NUnit runs them
// in a parallel phase of their own, never beside a non-parallel fixture.
[assembly: Parallelizable(ParallelScope.None)]
[assembly: LevelOfParallelism(2)]

// A failed test shows what the processes it started printed.
[assembly: Swap.Nbd.Tests.Support.ProcessOutputOnFailure]
