using System.Buffers;
using BenchmarkDotNet.Attributes;
using Swap.Common.Buffers;

namespace Swap.Benchmarks.Buffers;

/// <summary>Rent/Return of the pinned pool the request path uses, against ArrayPool as the reference.</summary>
[MemoryDiagnoser]
public class PinnedBufferPoolBenchmarks
{
    private readonly PinnedBufferPool _pool = new();

    [Params(4096, 128 * 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup() => _pool.Preallocate(Size, 4);

    [Benchmark]
    public int PinnedRentReturn()
    {
        var buffer = _pool.Rent(Size);
        _pool.Return(buffer);
        return buffer.Length;
    }

    [Benchmark(Baseline = true)]
    public int ArrayPoolRentReturn()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Size);
        ArrayPool<byte>.Shared.Return(buffer);
        return buffer.Length;
    }
}
