using BenchmarkDotNet.Attributes;
using Swap.BlockDevices;

namespace Swap.Benchmarks.Devices;

/// <summary>4 KiB reads and overwrites on the in-memory device, at scattered page offsets (as swap does).</summary>
[MemoryDiagnoser]
public class SparseMemoryDeviceBenchmarks
{
    private const long DeviceSize = 256L << 20;
    private const long Filled = 128L << 20;
    private const int PageCount = (int)(Filled / 4096);

    private readonly byte[] _page = new byte[4096];
    private SparseMemoryDevice _device = null!;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _device = new SparseMemoryDevice(DeviceSize);
        Random.Shared.NextBytes(_page);
        for (long offset = 0; offset < Filled; offset += _page.Length)
        {
            _device.TryWrite(offset, _page, fua: false);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _device.Dispose();

    // A fixed odd stride walks every page of the filled half in a cache-unfriendly order without a random call.
    private long NextOffset()
    {
        _next = (_next + 7919) % PageCount;
        return (long)_next * 4096;
    }

    [Benchmark]
    public bool TryRead4K() => _device.TryRead(NextOffset(), _page);

    [Benchmark]
    public bool TryWrite4K() => _device.TryWrite(NextOffset(), _page, fua: false);

    [Benchmark]
    public bool TryReadHole4K() => _device.TryRead(Filled + NextOffset(), _page);
}
