namespace Swap.Common.Logging;

/// <summary>
/// At most <c>burst</c> messages of one kind a <c>window</c>, as the kernel's printk_ratelimit does: a disk that
/// fails every retry of the same swap-out must not write thousands of lines a minute (the metrics still count every
/// one). The first message after a quiet window says how many were held back before it.
/// </summary>
public sealed class LogThrottle(int burst, TimeSpan window, TimeProvider time)
{
    private readonly Lock _lock = new();
    private long _windowStart = long.MinValue;
    private int _logged;
    private long _suppressed;

    /// <summary>
    /// True if this message may be logged; <paramref name="suppressed"/> is then the number held back since the
    /// last one that was (to be logged first), else 0.
    /// </summary>
    public bool TryEnter(out long suppressed)
    {
        var now = time.GetTimestamp();
        lock (_lock)
        {
            if (_windowStart == long.MinValue || time.GetElapsedTime(_windowStart, now) >= window)
            {
                _windowStart = now;
                _logged = 0;
            }

            if (_logged < burst)
            {
                _logged++;
                suppressed = _suppressed;
                _suppressed = 0;
                return true;
            }

            _suppressed++;
            suppressed = 0;
            return false;
        }
    }
}
