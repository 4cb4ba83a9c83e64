namespace Swap.Slabs.Placement;

/// <summary>Replays the server's placement policy on a model of daemons to compare d = 1, 2, 3 choices.</summary>
public static class PlacementSimulation
{
    /// <summary>
    /// Places <paramref name="slabs"/> slabs one by one on daemons of the given capacities (in slabs) with
    /// <paramref name="choices"/> random candidates, the freest winning; when every candidate is full it takes any daemon
    /// with room, at random, as the server does. Deterministic for a seed.
    /// </summary>
    public static PlacementResult Run(ReadOnlySpan<long> capacities, int slabs, int choices, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slabs);
        ArgumentOutOfRangeException.ThrowIfLessThan(choices, 1);
        foreach (var capacity in capacities)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(capacity, nameof(capacities));
        }

        var random = new Random(seed);
        var n = capacities.Length;
        var free = capacities.ToArray();
        var load = new int[n];

        // Daemons that still have room, so the fallback is O(1): a full daemon is swapped out of the live prefix.
        var open = new int[n];
        var position = new int[n];
        var openCount = 0;
        for (var i = 0; i < n; i++)
        {
            position[i] = -1;
            if (free[i] > 0)
            {
                open[openCount] = i;
                position[i] = openCount++;
            }
        }

        Span<int> picked = stackalloc int[Math.Min(choices, Math.Max(n, 1))];
        if (picked.Length > n)
        {
            picked = [];
        }

        var unplaced = 0;
        for (var s = 0; s < slabs; s++)
        {
            var target = -1;
            if (picked.Length > 0)
            {
                PowerOfChoices.Sample(random, n, picked);
                target = PowerOfChoices.Freest(random, picked, free);
            }

            if (target < 0)
            {
                if (openCount == 0)
                {
                    unplaced++;
                    continue;
                }

                target = open[random.Next(openCount)];
            }

            load[target]++;
            if (--free[target] == 0)
            {
                var p = position[target];
                var last = open[--openCount];
                open[p] = last;
                position[last] = p;
                position[target] = -1;
            }
        }

        return new PlacementResult(choices, load, unplaced) { Capacities = capacities.ToArray() };
    }
}
