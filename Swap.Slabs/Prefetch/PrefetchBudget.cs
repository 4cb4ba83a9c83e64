namespace Swap.Slabs.Prefetch;

/// <summary>
/// The donor bytes prefetching may add: a token bucket of <c>rate</c> bytes a second holding at most a twentieth of
/// a second's worth (at least 256 KiB), so a burst never floods a link and the long-run share is bounded. Callers
/// serialize (the prefetcher's lock).
/// </summary>
internal sealed class PrefetchBudget(long bytesPerSecond, TimeProvider time)
{
    private readonly long _capacity = Math.Max(256 << 10, bytesPerSecond / 20);
    private long _tokens = Math.Max(256 << 10, bytesPerSecond / 20);
    private long _stamp = time.GetTimestamp();

    /// <summary>Takes <paramref name="bytes"/> if the bucket holds them.</summary>
    public bool TryTake(int bytes)
    {
        var now = time.GetTimestamp();
        var elapsed = time.GetElapsedTime(_stamp, now);
        if (elapsed > TimeSpan.Zero)
        {
            var refill = (long)(elapsed.TotalSeconds * bytesPerSecond);
            if (refill > 0)
            {
                _tokens = Math.Min(_capacity, _tokens + refill);
                _stamp = now;
            }
        }

        if (_tokens < bytes)
        {
            return false;
        }

        _tokens -= bytes;
        return true;
    }

    /// <summary>Gives back <paramref name="bytes"/> taken for a prefetch that did not start (never above the bucket's size).</summary>
    public void Refund(int bytes) => _tokens = Math.Min(_capacity, _tokens + bytes);

    /// <summary>Bytes the bucket holds now, before the refill due since the last take (a test's view).</summary>
    internal long Tokens => _tokens;
}
