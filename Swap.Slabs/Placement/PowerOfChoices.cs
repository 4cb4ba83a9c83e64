namespace Swap.Slabs.Placement;

/// <summary>The "power of d choices" primitives: sample d distinct daemons, keep the one with the most free slabs.</summary>
/// <remarks>Allocation-free so the server can call them on every slab it maps.</remarks>
public static class PowerOfChoices
{
    /// <summary>Writes <c>picked.Length</c> distinct indices, chosen uniformly at random from [0, <paramref name="count"/>), in random order.</summary>
    public static void Sample(Random random, int count, Span<int> picked)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(picked.Length, count, nameof(picked));

        // Floyd's algorithm: a uniform k-subset in k draws whatever k/count is (rejection sampling degrades as k nears count).
        var k = picked.Length;
        for (int i = 0, j = count - k; i < k; i++, j++)
        {
            var t = random.Next(j + 1);
            picked[i] = picked[..i].Contains(t) ? j : t;
        }

        // Floyd's subset is uniform but its order is not (late slots favour large j); callers may rely on order.
        for (var i = k - 1; i > 0; i--)
        {
            var r = random.Next(i + 1);
            (picked[i], picked[r]) = (picked[r], picked[i]);
        }
    }

    /// <summary>The candidate with the largest <c>free[candidate]</c>, ties broken at random; -1 if none has free slabs.</summary>
    public static int Freest(Random random, ReadOnlySpan<int> candidates, ReadOnlySpan<long> free)
    {
        ArgumentNullException.ThrowIfNull(random);
        var best = -1;
        var bestFree = 0L;
        var ties = 0;
        foreach (var candidate in candidates)
        {
            var f = free[candidate];
            if (f <= 0 || f < bestFree)
            {
                continue;
            }

            if (f > bestFree)
            {
                best = candidate;
                bestFree = f;
                ties = 1;
            }
            else if (random.Next(++ties) == 0)
            {
                // Reservoir choice: each of the tied candidates ends up chosen with probability 1/ties.
                best = candidate;
            }
        }

        return best;
    }
}
