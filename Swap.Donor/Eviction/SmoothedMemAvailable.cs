namespace Swap.Donor.Eviction;

/// <summary>
/// The exponential moving average of MemAvailable: updated by the memory monitor, read by the lending arithmetic.
/// Guarded by the daemon's lock (callers hold it), as both readers decide on the slab table in the same breath.
/// </summary>
internal sealed class SmoothedMemAvailable
{
    private double _value = double.NaN;

    /// <summary>The average in bytes, 0 before the first reading.</summary>
    public long Value => double.IsNaN(_value) ? 0 : (long)_value;

    /// <summary>The average, or <paramref name="reading"/> before the first one.</summary>
    public long ValueOr(long reading) => double.IsNaN(_value) ? reading : (long)_value;

    /// <summary>Starts the average afresh at <paramref name="reading"/>.</summary>
    public void Reset(long reading) => _value = reading;

    /// <summary>Takes in a new reading with weight <paramref name="alpha"/> and returns the new average.</summary>
    public long Add(long reading, double alpha)
    {
        _value = double.IsNaN(_value) ? reading : (alpha * reading) + ((1 - alpha) * _value);
        return (long)_value;
    }

    /// <summary>Counts <paramref name="bytes"/> just given back to the kernel at once, ahead of the lagging average.</summary>
    public void Credit(long bytes) => _value += bytes;
}
