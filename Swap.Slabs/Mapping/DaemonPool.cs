using System.Net;
using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;
using Swap.Slabs.Placement;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The daemons of the portal and what their links coming and going means for the slabs: a daemon joining wakes
/// the slabs waiting for room (after its probation, if it failed before: <see cref="DaemonProbation"/>); a lost link
/// unmaps every slab on it, and an eviction notice the slab it names; the <see cref="SlabPlacer"/> places those again.
/// The set changes while the device runs (<see cref="Apply"/>): a daemon new to the portal is connected and takes
/// slabs at once; one gone from it is drained (<see cref="DrainAsync"/>) and then closed.
/// </summary>
internal sealed class DaemonPool
{
    private static readonly TimeSpan DrainPoll = TimeSpan.FromMilliseconds(20);

    private readonly DaemonMembers _members;
    private readonly Func<string, EndPoint, DaemonEndpoint> _connect;
    private readonly SlabTable _table;
    private readonly SlabPlacer _placer;
    private readonly DaemonProbation _probation;
    private readonly TimeSpan _drainTimeout;
    private readonly TimeSpan _joinWait;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationToken _stopping;
    private readonly List<Task> _drains = [];
    private bool _started;
    private bool _stopped;

    /// <param name="daemons">The first set, connected by <see cref="Start"/>.</param>
    /// <param name="connect">Makes the endpoint (not started) of a daemon: name, address.</param>
    /// <param name="members">The same the placer's chooser reads.</param>
    /// <param name="probation">The same the placer's chooser asks.</param>
    /// <param name="drainTimeout">Longest a drain waits for its slabs to find other daemons before it closes the link anyway.</param>
    /// <param name="joinWait">Longest a drain waits for the daemons that joined with it to come up (one connect attempt and a retry).</param>
    /// <param name="stopping">Cancelled when the device stops: drains end.</param>
    public DaemonPool(IReadOnlyList<(string Name, EndPoint EndPoint)> daemons, Func<string, EndPoint, DaemonEndpoint> connect,
        DaemonMembers members, SlabTable table, SlabPlacer placer, DaemonProbation probation, TimeSpan drainTimeout, TimeSpan joinWait,
        TimeProvider time, ILogger logger, CancellationToken stopping)
    {
        _joinWait = joinWait;
        _members = members;
        _connect = connect;
        _table = table;
        _placer = placer;
        _probation = probation;
        _drainTimeout = drainTimeout;
        _time = time;
        _logger = logger;
        _stopping = stopping;
        foreach (var (name, endPoint) in daemons)
        {
            Add(name, endPoint);
        }
    }

    /// <summary>The daemons now, draining ones included until their link is closed.</summary>
    public IReadOnlyList<DaemonEndpoint> Daemons => Array.ConvertAll(_members.Current, m => m.Endpoint);

    public DaemonMember[] Members => _members.Current;

    /// <summary>The member named so, or null (gone, or never was).</summary>
    public DaemonMember? Find(string name) => _members.Find(name);

    /// <summary>Starts connecting to every daemon; those added later are started as they come.</summary>
    public void Start()
    {
        lock (_members.Sync)
        {
            _started = true;
            foreach (var member in _members.Current)
            {
                member.Endpoint.Start();
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="desired"/> the set of daemons: each one not in the pool is connected (and takes slabs as
    /// soon as its link is up), each one in the pool but not in the set is drained and then closed, and one that was
    /// draining and is back stays. Daemons are told apart by name (HOST:PORT).
    /// </summary>
    public DaemonSetChange Apply(IReadOnlyList<(string Name, EndPoint EndPoint)> desired)
    {
        var added = new List<string>();
        var removed = new List<string>();
        var drains = new List<Task>();
        lock (_members.Sync)
        {
            if (_stopped)
            {
                return new DaemonSetChange(added, removed, Task.CompletedTask);
            }

            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, endPoint) in desired)
            {
                if (!names.Add(name))
                {
                    continue;
                }

                if (_members.Find(name) is { } member)
                {
                    if (member.StopDraining())
                    {
                        SlabLog.DrainCancelled(_logger, name);
                        added.Add(name);
                        _placer.RetryAllNow();
                    }

                    continue;
                }

                var joined = Add(name, endPoint);
                SlabLog.DaemonAdded(_logger, name);
                added.Add(name);
                if (_started)
                {
                    joined.Endpoint.Start();
                }
            }

            var joining = _members.Current.Where(m => added.Contains(m.Name)).ToArray();
            foreach (var member in _members.Current)
            {
                if (!names.Contains(member.Name) && member.StartDraining())
                {
                    removed.Add(member.Name);
                    var drain = Task.Run(() => DrainAsync(member, joining));
                    _drains.Add(drain);
                    drains.Add(drain);
                }
            }

            _drains.RemoveAll(d => d.IsCompleted);
        }

        return new DaemonSetChange(added, removed, Task.WhenAll(drains));
    }

    /// <summary>Closes every link (drains under way end first).</summary>
    public async ValueTask StopAsync()
    {
        Task[] drains;
        lock (_members.Sync)
        {
            _stopped = true;
            drains = [.. _drains];
        }

        await Task.WhenAll(drains).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var member in _members.Current)
        {
            await member.Endpoint.DisposeAsync().ConfigureAwait(false);
        }
    }

    private DaemonMember Add(string name, EndPoint endPoint)
    {
        var endpoint = _connect(name, endPoint);
        endpoint.Joined += OnJoined;
        endpoint.Lost += OnLost;
        return _members.Add(endpoint);
    }

    /// <summary>
    /// Moves a daemon's slabs off it, then closes its link. It takes no new slab from the moment it is marked
    /// draining. Each of its slabs is unmapped (its pages are all on the backup disk, so reads go there at once and no
    /// page is lost) and placed again on other daemons, or waits on the disk when none has room; the slab is also freed
    /// on the daemon, so a read still in flight under the old mapping is answered STALE and read from the disk, never
    /// from a copy a later write made stale. The link is closed once every moved slab is placed elsewhere (filled) or
    /// waiting on the disk, or after the drain timeout; anything still in flight on it then fails over to the disk.
    /// </summary>
    /// <param name="joining">Daemons that joined in the same change (a donor replaced by another): the drain waits a
    /// moment for their links (up, and past a probation if the first one failed), so the slabs can move to them rather
    /// than crowd the daemons that were there before.</param>
    private async Task DrainAsync(DaemonMember member, DaemonMember[] joining)
    {
        var started = _time.GetTimestamp();
        var moved = new HashSet<int>();
        try
        {
            while (joining.Any(j => j.Endpoint.Link is not { IsAlive: true } || !_probation.MayTakeSlabs(j.Serial)) && _time.GetElapsedTime(started) < _joinWait)
            {
                await Task.Delay(DrainPoll, _time, _stopping).ConfigureAwait(false);
            }

            SlabLog.Draining(_logger, member.Name, await MoveSlabsAsync(member, moved).ConfigureAwait(false));
            while (member.Draining && _time.GetElapsedTime(started) < _drainTimeout)
            {
                // A placement that chose this daemon just before it was marked can still publish a mapping on it.
                await MoveSlabsAsync(member, moved).ConfigureAwait(false);
                if (moved.All(Settled))
                {
                    break;
                }

                await Task.Delay(DrainPoll, _time, _stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return;
        }

        lock (_members.Sync)
        {
            if (_stopped || !member.Draining || !_members.Remove(member))
            {
                // Stopping (StopAsync closes it) or back in the portal (Apply said so).
                return;
            }
        }

        await MoveSlabsAsync(member, moved).ConfigureAwait(false);
        var elsewhere = moved.Count(slab => _table.Mapping(slab) is { Usable: true } mapping && mapping.Daemon != member.Endpoint);
        member.Endpoint.Joined -= OnJoined;
        member.Endpoint.Lost -= OnLost;
        await member.Endpoint.DisposeAsync().ConfigureAwait(false);
        SlabLog.Drained(_logger, member.Name, _time.GetElapsedTime(started), elsewhere, moved.Count - elsewhere);
    }

    /// <summary>Unmaps every slab on the daemon and frees it there; returns how many there were.</summary>
    private async Task<int> MoveSlabsAsync(DaemonMember member, HashSet<int> moved)
    {
        var count = 0;
        for (var slab = 0; slab < _table.Count; slab++)
        {
            if (_table.Mapping(slab) is not { } mapping || mapping.Daemon != member.Endpoint)
            {
                continue;
            }

            count++;
            moved.Add(slab);
            _placer.Unmap(slab, mapping, "daemon left the portal (drained)");
            if (mapping.Link.IsAlive)
            {
                try
                {
                    await mapping.Link.FreeSlabAsync(mapping.Grant).ConfigureAwait(false);
                }
                catch (DaemonLinkException)
                {
                    // The link is gone: the daemon frees the slab itself after its grace period.
                }
            }
        }

        return count;
    }

    /// <summary>Placed elsewhere and filled, or waiting on the disk for room.</summary>
    private bool Settled(int slab) => _table.Placement(slab) switch
    {
        SlabPlacement.Placing => false,
        SlabPlacement.Placed => _table.Mapping(slab) is not { State: SlabState.Filling, Usable: true },
        _ => true,
    };

    private void OnJoined(DaemonEndpoint daemon, DaemonLink link)
    {
        link.Evicted += OnEvicted;
        if (_members.Find(daemon) is not { } member)
        {
            return;
        }

        member.CountJoin();
        var probation = _probation.Joined(member.Serial);
        if (member.Draining)
        {
            return;
        }

        if (probation > TimeSpan.Zero)
        {
            SlabLog.Probation(_logger, daemon.Name, _probation.Failures(member.Serial), probation);
            _placer.RetryAllAfter(probation);
            return;
        }

        _placer.RetryAllNow();
    }

    private void OnLost(DaemonEndpoint daemon, DaemonLink link)
    {
        if (_members.Find(daemon) is { } member)
        {
            _probation.Lost(member.Serial);
            member.CountFailure();
        }

        link.Evicted -= OnEvicted;
        for (var slab = 0; slab < _table.Count; slab++)
        {
            if (_table.Mapping(slab) is { } mapping && mapping.Link == link)
            {
                _placer.Unmap(slab, mapping, $"daemon lost ({link.DeathReason})");
            }
        }
    }

    private void OnEvicted(DaemonLink link, SlabGrant grant)
    {
        _members.Find(link)?.CountEviction();
        for (var slab = 0; slab < _table.Count; slab++)
        {
            if (_table.Mapping(slab) is { } mapping && mapping.Link == link && mapping.Grant == grant)
            {
                _placer.Unmap(slab, mapping, "evicted by the daemon");
                return;
            }
        }
    }
}
