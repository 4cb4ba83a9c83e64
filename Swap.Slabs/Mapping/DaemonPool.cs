using System.Net;
using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;
using Swap.Slabs.Placement;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The daemons from portal.list and what their links coming and going means for the slabs: a daemon joining wakes
/// the slabs waiting for room (after its probation, if it failed before: <see cref="DaemonProbation"/>); a lost link
/// unmaps every slab on it, and an eviction notice the slab it names; the <see cref="SlabPlacer"/> places those again.
/// </summary>
internal sealed class DaemonPool
{
    private readonly DaemonEndpoint[] _daemons;
    private readonly SlabTable _table;
    private readonly SlabPlacer _placer;
    private readonly DaemonProbation _probation;
    private readonly ILogger _logger;
    private readonly long[] _joins;
    private readonly long[] _failures;
    private readonly long[] _evictions;

    /// <param name="daemons">Made by <see cref="CreateEndpoints"/>, not started yet.</param>
    /// <param name="probation">The same the placer's chooser asks.</param>
    public DaemonPool(DaemonEndpoint[] daemons, SlabTable table, SlabPlacer placer, DaemonProbation probation, ILogger logger)
    {
        _daemons = daemons;
        _table = table;
        _placer = placer;
        _probation = probation;
        _logger = logger;
        _joins = new long[daemons.Length];
        _failures = new long[daemons.Length];
        _evictions = new long[daemons.Length];
        foreach (var daemon in _daemons)
        {
            daemon.Joined += OnJoined;
            daemon.Lost += OnLost;
        }
    }

    public IReadOnlyList<DaemonEndpoint> Daemons => _daemons;

    public static DaemonEndpoint[] CreateEndpoints(IReadOnlyList<(string Name, EndPoint EndPoint)> daemons, ulong clientId,
        DaemonLinkSettings settings, TimeProvider time, ILogger logger)
    {
        var endpoints = new DaemonEndpoint[daemons.Count];
        for (var i = 0; i < endpoints.Length; i++)
        {
            endpoints[i] = new DaemonEndpoint(daemons[i].Name, daemons[i].EndPoint, clientId, settings, time, logger);
        }

        return endpoints;
    }

    /// <summary>Starts connecting to every daemon.</summary>
    public void Start()
    {
        foreach (var daemon in _daemons)
        {
            daemon.Start();
        }
    }

    /// <summary>Closes every link.</summary>
    public async ValueTask StopAsync()
    {
        foreach (var daemon in _daemons)
        {
            await daemon.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Times the daemon at <paramref name="index"/> has come up (the first connect and every reconnect).</summary>
    public long JoinsOf(int index) => Interlocked.Read(ref _joins[index]);

    /// <summary>Times the daemon's link was lost (killed, timed out, garbage, closed).</summary>
    public long FailuresOf(int index) => Interlocked.Read(ref _failures[index]);

    /// <summary>Eviction notices the daemon sent.</summary>
    public long EvictionsOf(int index) => Interlocked.Read(ref _evictions[index]);

    /// <summary>Where the daemon is in <see cref="Daemons"/>.</summary>
    public int IndexOf(DaemonEndpoint daemon) => Array.IndexOf(_daemons, daemon);

    private void OnJoined(DaemonEndpoint daemon, DaemonLink link)
    {
        link.Evicted += OnEvicted;
        var index = IndexOf(daemon);
        Interlocked.Increment(ref _joins[index]);
        var probation = _probation.Joined(index);
        if (probation > TimeSpan.Zero)
        {
            SlabLog.Probation(_logger, daemon.Name, _probation.Failures(index), probation);
            _placer.RetryAllAfter(probation);
            return;
        }

        _placer.RetryAllNow();
    }

    private void OnLost(DaemonEndpoint daemon, DaemonLink link)
    {
        _probation.Lost(IndexOf(daemon));
        Interlocked.Increment(ref _failures[IndexOf(daemon)]);
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
        var daemon = Array.FindIndex(_daemons, d => d.Link == link);
        if (daemon >= 0)
        {
            Interlocked.Increment(ref _evictions[daemon]);
        }

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
