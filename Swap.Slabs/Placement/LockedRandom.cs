namespace Swap.Slabs.Placement;

/// <summary>
/// The one random source of a device's placement (daemon choice and retry jitter), safe to share between the
/// placements running at once; one seed makes both reproducible.
/// </summary>
internal sealed class LockedRandom(int? seed)
{
    private readonly Random _random = seed is { } value ? new Random(value) : new Random();
    private readonly Lock _lock = new();

    /// <inheritdoc cref="PowerOfChoices.Sample"/>
    public void Sample(int count, Span<int> picked)
    {
        lock (_lock)
        {
            PowerOfChoices.Sample(_random, count, picked);
        }
    }

    /// <inheritdoc cref="PowerOfChoices.Freest"/>
    public int Freest(ReadOnlySpan<int> candidates, ReadOnlySpan<long> free)
    {
        lock (_lock)
        {
            return PowerOfChoices.Freest(_random, candidates, free);
        }
    }

    public void Shuffle<T>(T[] values)
    {
        lock (_lock)
        {
            _random.Shuffle(values);
        }
    }

    public double NextDouble()
    {
        lock (_lock)
        {
            return _random.NextDouble();
        }
    }
}
