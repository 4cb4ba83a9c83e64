using NUnit.Framework;

// Integration tests bind real sockets and start real processes; two cores do not gain from running them in parallel.
[assembly: NonParallelizable]
