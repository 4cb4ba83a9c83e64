using BenchmarkDotNet.Attributes;
using Swap.Nbd.Tests.Support;

namespace Swap.Benchmarks.Server;

/// <summary>
/// The whole request path in one process: a real NbdServer on a Unix socket and a raw pipelined client.
/// Times are per request. The client allocates nothing; whether BenchmarkDotNet's Allocated column also counts the
/// server's thread-pool threads depends on its GC counter, so <c>--alloc-check</c> is the authoritative per-request figure.
/// </summary>
[MemoryDiagnoser]
public class RequestPathBenchmarks
{
    private const int Depth = 32;

    private TestServer _server = null!;
    private PipelinedNbdClient _client = null!;

    [GlobalSetup]
    public void Setup()
    {
        _server = BenchExport.Start();
        _client = PipelinedNbdClient.Connect(_server.SocketPath, Depth);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _server.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark]
    public void Read4K_QD1() => _client.Read(1);

    [Benchmark(OperationsPerInvoke = Depth)]
    public void Read4K_QD32() => _client.Read(Depth);

    [Benchmark]
    public void Write4K_QD1() => _client.Write(1);

    [Benchmark(OperationsPerInvoke = Depth)]
    public void Write4K_QD32() => _client.Write(Depth);
}
