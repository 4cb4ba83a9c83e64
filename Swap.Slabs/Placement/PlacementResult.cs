namespace Swap.Slabs.Placement;

/// <summary>How a placement run spread slabs over daemons: slabs per daemon, and slabs that found no room.</summary>
/// <param name="Load">Slabs placed on each daemon, indexed like the capacities of the run.</param>
public sealed record PlacementResult(int Choices, int[] Load, int Unplaced)
{
    /// <summary>Capacity of each daemon in slabs (empty when unknown; the utilizations are then NaN).</summary>
    public long[] Capacities { get; init; } = [];

    public int Max => Load.Length == 0 ? 0 : Load.Max();

    public int Min => Load.Length == 0 ? 0 : Load.Min();

    /// <summary>The highest load relative to capacity (1.0 = a full daemon), over daemons with capacity.</summary>
    public double MaxUtilization => Utilizations().DefaultIfEmpty(double.NaN).Max();

    /// <summary>The lowest load relative to capacity, over daemons with capacity.</summary>
    public double MinUtilization => Utilizations().DefaultIfEmpty(double.NaN).Min();

    private IEnumerable<double> Utilizations()
    {
        if (Capacities.Length != Load.Length)
        {
            yield break;
        }

        for (var i = 0; i < Load.Length; i++)
        {
            if (Capacities[i] > 0)
            {
                yield return (double)Load[i] / Capacities[i];
            }
        }
    }
}
