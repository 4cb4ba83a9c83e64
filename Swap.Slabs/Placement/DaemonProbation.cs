namespace Swap.Slabs.Placement;

/// <summary>
/// Keeps new slabs off a daemon whose link failed until it has stayed up for a while. A flapping link would take
/// slabs each time it rejoins and lose them at its next failure, and every such move copies the whole slab from the
/// backup disk again; meanwhile those slabs are served from the disk either way. The wait starts at <c>first</c>
/// and doubles with every failure that ends a stay shorter than <c>max</c>, up to <c>max</c>; a daemon that stayed
/// up for <c>max</c> or longer starts over. A daemon that never failed takes slabs at once. Daemons are numbered by
/// their <see cref="DaemonMember.Serial"/>; the tables grow as daemons join the portal.
/// </summary>
internal sealed class DaemonProbation(int daemons, TimeSpan first, TimeSpan max, TimeProvider time)
{
    private readonly Lock _lock = new();
    private long[] _upSince = new long[daemons];
    private int[] _failures = new int[daemons];

    /// <summary>Timestamp before which the daemon takes no new slabs (0: never on probation).</summary>
    private long[] _until = new long[daemons];

    /// <summary>Failures in a row of the daemon's link, each ending a stay shorter than the longest probation.</summary>
    public int Failures(int daemon)
    {
        lock (_lock)
        {
            Grow(daemon);
            return _failures[daemon];
        }
    }

    /// <summary>The daemon's link failed.</summary>
    public void Lost(int daemon)
    {
        lock (_lock)
        {
            Grow(daemon);
            var stayed = time.GetElapsedTime(_upSince[daemon]);
            _failures[daemon] = stayed >= max ? 1 : _failures[daemon] + 1;
        }
    }

    /// <summary>The daemon's link came up: how long it must stay up before it takes new slabs (zero: at once).</summary>
    public TimeSpan Joined(int daemon)
    {
        lock (_lock)
        {
            Grow(daemon);
            var now = time.GetTimestamp();
            _upSince[daemon] = now;
            var failures = _failures[daemon];
            var wait = failures == 0 ? TimeSpan.Zero : TimeSpan.FromTicks(Math.Min(max.Ticks, first.Ticks << Math.Min(failures - 1, 20)));
            _until[daemon] = now + (long)(wait.TotalSeconds * time.TimestampFrequency);
            return wait;
        }
    }

    /// <summary>Whether the daemon may be given new slabs now (its link may still be down: ask the link).</summary>
    public bool MayTakeSlabs(int daemon)
    {
        lock (_lock)
        {
            return daemon >= _until.Length || time.GetTimestamp() >= _until[daemon];
        }
    }

    private void Grow(int daemon)
    {
        if (daemon < _until.Length)
        {
            return;
        }

        var length = Math.Max(daemon + 1, _until.Length * 2);
        Array.Resize(ref _upSince, length);
        Array.Resize(ref _failures, length);
        Array.Resize(ref _until, length);
    }
}
