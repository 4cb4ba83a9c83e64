using BenchmarkDotNet.Attributes;
using Swap.Slabs.Placement;

namespace Swap.Benchmarks.Placement;

/// <summary>The placement policy at scale: 10,000 slabs over 1,000 daemons with d = 1, 2, 3 choices, and one slab's decision.</summary>
[MemoryDiagnoser]
public class PlacementSimulationBenchmarks
{
    private const int Daemons = 1_000;
    private const int Slabs = 10_000;

    private readonly long[] _capacities = Enumerable.Repeat(1_000L, Daemons).ToArray();
    private readonly long[] _free = Enumerable.Range(0, Daemons).Select(i => (long)(i % 17)).ToArray();
    private readonly int[] _picked = new int[3];
    private readonly Random _random = new(1);

    [Params(1, 2, 3)]
    public int Choices { get; set; }

    /// <summary>A whole run; its allocations are the result arrays, not per slab.</summary>
    [Benchmark]
    public int Simulate1000x10000() => PlacementSimulation.Run(_capacities, Slabs, Choices, seed: 2024).Max;

    /// <summary>What the server does per slab it maps: sample d daemons, keep the freest (0 B expected).</summary>
    [Benchmark]
    public int ChooseOne()
    {
        var picked = _picked.AsSpan(0, Choices);
        PowerOfChoices.Sample(_random, Daemons, picked);
        return PowerOfChoices.Freest(_random, picked, _free);
    }
}
