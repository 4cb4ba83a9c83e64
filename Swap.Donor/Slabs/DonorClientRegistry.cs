using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;
using Swap.Donor.Status;

namespace Swap.Donor.Slabs;

/// <summary>
/// The client ids served (at most MaxClients, those in their grace period included), which connections speak for
/// each, and the grace period that keeps a client's slabs after its last connection closes. Shares the daemon's lock
/// with the slab table: a client's slab set and the table change together.
/// </summary>
internal sealed class DonorClientRegistry(Lock gate, DonorSlabTable slabs, DonorOptions options, TimeProvider time, ILogger logger)
{
    private readonly Dictionary<ulong, DonorClient> _clients = [];
    private bool _stopped;

    /// <summary>Client ids known: connected, or disconnected and within their grace period.</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return _clients.Count;
            }
        }
    }

    /// <summary>Slabs held per client id (hex), for the metrics.</summary>
    public List<(string Client, int Slabs)> SlabsPerClient()
    {
        lock (gate)
        {
            return _clients.Values.Select(c => (c.Id.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), c.Slabs.Count)).ToList();
        }
    }

    /// <summary>Every client id with its slabs and connections, for the status file.</summary>
    public List<DonorClientStatus> Snapshot()
    {
        lock (gate)
        {
            return _clients.Values.Select(static c => new DonorClientStatus(
                c.Id.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), c.Slabs.Count,
                c.Slabs.Sum(static s => s.Size), c.Slabs.Sum(static s => s.Device.AllocatedBytes),
                c.Connections.Count, c.GraceTimer is not null)).ToList();
        }
    }

    /// <summary>Whether the client is still served (not expired); the caller holds the lock.</summary>
    public bool IsKnownLocked(DonorClient client) => _clients.ContainsKey(client.Id);

    /// <summary>Binds the connection to a client id; with <paramref name="release"/> the id's earlier slabs are freed first.</summary>
    public DaemonStatus Hello(IClientConnection connection, ulong clientId, bool release)
    {
        lock (gate)
        {
            if (connection.Client is { } current)
            {
                // A second HELLO may repeat the first, not change who this connection speaks for.
                return current.Id == clientId ? DaemonStatus.Ok : DaemonStatus.Invalid;
            }

            if (_clients.TryGetValue(clientId, out var client))
            {
                if (client.GraceTimer is { } timer)
                {
                    timer.Dispose();
                    client.GraceTimer = null;
                    DonorLog.GraceResumed(logger, clientId, client.Slabs.Count);
                }

                if (release && client.Slabs.Count > 0)
                {
                    // Other connections of this id that still use these slabs get STALE and re-place them.
                    var count = client.Slabs.Count;
                    RemoveSlabsLocked(client);
                    DonorLog.SlabsReleased(logger, clientId, count);
                }
            }
            else
            {
                if (_clients.Count >= options.MaxClients)
                {
                    DonorLog.ClientLimit(logger, connection.Id, clientId, options.MaxClients);
                    return DaemonStatus.Limit;
                }

                client = new DonorClient(clientId);
                _clients[clientId] = client;
            }

            client.Connections.Add(connection);
            connection.Client = client;
            return DaemonStatus.Ok;
        }
    }

    /// <summary>A connection ended: if it was its client's last, the client's slabs are kept for the grace period.</summary>
    public void Detach(IClientConnection connection)
    {
        lock (gate)
        {
            if (connection.Client is not { } client || !client.Connections.Remove(connection) || client.Connections.Count > 0)
            {
                return;
            }

            if (_stopped || !_clients.ContainsKey(client.Id))
            {
                return;
            }

            if (options.GracePeriod == TimeSpan.Zero)
            {
                ExpireLocked(client);
                return;
            }

            DonorLog.GraceStarted(logger, client.Id, options.GracePeriod);
            client.GraceTimer?.Dispose();
            ITimer? timer = null;
            timer = time.CreateTimer(_ => Expire(client, timer), null, options.GracePeriod, Timeout.InfiniteTimeSpan);
            client.GraceTimer = timer;
        }
    }

    /// <summary>The daemon is stopping: connections that close from now on start no grace period.</summary>
    public void Stop()
    {
        lock (gate)
        {
            _stopped = true;
        }
    }

    /// <summary>Forgets every client and frees every slab (at stop, once every connection is closed).</summary>
    public void ReleaseAll()
    {
        lock (gate)
        {
            foreach (var client in _clients.Values)
            {
                client.GraceTimer?.Dispose();
                client.GraceTimer = null;
            }

            slabs.RemoveAllLocked();
            _clients.Clear();
        }
    }

    private void Expire(DonorClient client, ITimer? timer)
    {
        lock (gate)
        {
            // A HELLO in time replaced or cleared the timer; this one is stale.
            if (timer is null || client.GraceTimer != timer || client.Connections.Count > 0)
            {
                return;
            }

            timer.Dispose();
            client.GraceTimer = null;
            ExpireLocked(client);
        }
    }

    private void ExpireLocked(DonorClient client)
    {
        var count = client.Slabs.Count;
        RemoveSlabsLocked(client);
        _clients.Remove(client.Id);
        DonorLog.GraceExpired(logger, client.Id, count);
    }

    private void RemoveSlabsLocked(DonorClient client)
    {
        foreach (var slab in client.Slabs.ToArray())
        {
            slabs.RemoveLocked(slab);
        }
    }
}
