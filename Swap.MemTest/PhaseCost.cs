namespace Swap.MemTest;

/// <summary>What one phase of the workload took: its wall time and the machine's swap traffic meanwhile.</summary>
public readonly record struct PhaseCost(TimeSpan Time, SwapTraffic Swap)
{
    public static PhaseCost operator +(PhaseCost a, PhaseCost b) => new(a.Time + b.Time, a.Swap + b.Swap);
}
