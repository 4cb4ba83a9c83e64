using Swap.Daemon.Protocol;

namespace Swap.Donor;

// The slab table and the lending arithmetic. Allocation, freeing, eviction and client changes take _lock; the data
// path (READ/WRITE/TRIM) finds its slab without it, through a volatile read of _slots and the slab's reference count.
public sealed partial class DonorDaemon
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, DonorClient> _clients = [];
    private readonly List<DonorSlab> _mapped = [];
    private readonly Stack<uint> _freeIds = new();
    private DonorSlab?[] _slots = new DonorSlab?[64];
    private uint _nextSlabId = 1; // 0 is never a slab id
    private uint _epoch;
    private long _lent;

    /// <summary>Slabs currently lent.</summary>
    public int SlabCount
    {
        get
        {
            lock (_lock)
            {
                return _mapped.Count;
            }
        }
    }

    /// <summary>Bytes lent, every slab at its full size.</summary>
    public long BytesLent
    {
        get
        {
            lock (_lock)
            {
                return _lent;
            }
        }
    }

    /// <summary>Bytes of slab memory actually committed (pages written and not trimmed).</summary>
    public long BytesCommitted
    {
        get
        {
            lock (_lock)
            {
                return CommittedLocked();
            }
        }
    }

    /// <summary>Client ids known: connected, or disconnected and within their grace period.</summary>
    public int ClientCount
    {
        get
        {
            lock (_lock)
            {
                return _clients.Count;
            }
        }
    }

    internal DonorSlab? FindSlab(uint id)
    {
        var slots = Volatile.Read(ref _slots);
        return id < (uint)slots.Length ? Volatile.Read(ref slots[id]) : null;
    }

    /// <summary>Binds the connection to a client id; with <paramref name="release"/> the id's earlier slabs are freed first.</summary>
    internal DaemonStatus Hello(DonorConnection connection, ulong clientId, bool release)
    {
        lock (_lock)
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
                    DonorLog.GraceResumed(_logger, clientId, client.Slabs.Count);
                }

                if (release && client.Slabs.Count > 0)
                {
                    // Other connections of this id that still use these slabs get STALE and re-place them.
                    var slabs = client.Slabs.Count;
                    foreach (var slab in client.Slabs.ToArray())
                    {
                        RemoveLocked(slab);
                    }

                    DonorLog.SlabsReleased(_logger, clientId, slabs);
                }
            }
            else
            {
                if (_clients.Count >= _options.MaxClients)
                {
                    DonorLog.ClientLimit(_logger, connection.Id, clientId, _options.MaxClients);
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

    internal DaemonStatus QueryFree(DonorClient client, ulong slabSize, out uint free)
    {
        free = 0;
        if (!_options.AcceptsSlabSize(slabSize))
        {
            return DaemonStatus.Invalid;
        }

        var reading = _memory.GetAvailableBytes();
        lock (_lock)
        {
            free = FreeSlabsLocked(client, (long)slabSize, reading);
            return DaemonStatus.Ok;
        }
    }

    internal DaemonStatus Allocate(DonorClient client, SlabAllocRequest request, out SlabGrant grant)
    {
        grant = default;
        if (!_options.AcceptsSlabSize(request.SlabSize))
        {
            return DaemonStatus.Invalid;
        }

        var size = (long)request.SlabSize;
        var reading = _memory.GetAvailableBytes();
        lock (_lock)
        {
            if (FreeSlabsLocked(client, size, reading) == 0 || !_clients.ContainsKey(client.Id))
            {
                return DaemonStatus.NoSpace;
            }

            var id = _freeIds.Count > 0 ? _freeIds.Pop() : _nextSlabId++;
            // A reused id always comes with an epoch never seen before, so a request for the slab that held it is STALE.
            var epoch = ++_epoch == 0 ? ++_epoch : _epoch;
            var slab = new DonorSlab(id, epoch, client, size, Now());
            var slots = _slots;
            if (id >= slots.Length)
            {
                var grown = new DonorSlab?[Math.Max(slots.Length * 2, (int)id + 1)];
                slots.CopyTo(grown, 0);
                Volatile.Write(ref _slots, grown);
                slots = grown;
            }

            Volatile.Write(ref slots[id], slab);
            slab.MappedIndex = _mapped.Count;
            _mapped.Add(slab);
            client.Slabs.Add(slab);
            client.LastSlabSize = request.SlabSize;
            _lent += size;
            grant = new SlabGrant(id, epoch);
            DonorLog.SlabAllocated(_logger, id, epoch, size, client.Id, request.ServerSlabIndex);
            return DaemonStatus.Ok;
        }
    }

    internal DaemonStatus FreeSlab(DonorClient client, SlabRange slabRef)
    {
        lock (_lock)
        {
            var slab = FindSlab(slabRef.SlabId);
            if (slab is null || slab.Epoch != slabRef.Epoch || slab.Owner != client)
            {
                return DaemonStatus.Stale;
            }

            RemoveLocked(slab);
            DonorLog.SlabFreed(_logger, slab.Id, slab.Epoch, client.Id);
            return DaemonStatus.Ok;
        }
    }

    internal DaemonStats Stats(DonorClient client)
    {
        var reading = _memory.GetAvailableBytes();
        lock (_lock)
        {
            var free = FreeSlabsLocked(client, (long)client.LastSlabSize, reading);
            return new DaemonStats((ulong)_lent, (ulong)Math.Max(0, reading), (uint)_mapped.Count, free);
        }
    }

    /// <summary>
    /// How many more slabs of <paramref name="size"/> this client may have:
    /// <code>
    /// min( (MaxMemory − lent) / size,                          the operator's cap, each lent slab at its full size
    ///      MaxSlabsPerClient − slabs of this client,
    ///      (avail − Headroom − (lent − committed)) / size )    what the host can still give
    /// avail = min(smoothed MemAvailable, latest reading)
    /// </code>
    /// MemAvailable already excludes the committed part of lent slabs but not the rest, which their owners may fill at
    /// any moment, so that is taken off too. The smaller of smoothed and latest MemAvailable reacts to a drop at once
    /// and to a rise only as it persists: a lent slab is a long commitment, an eviction a cost for the server.
    /// </summary>
    private uint FreeSlabsLocked(DonorClient client, long size, long reading)
    {
        var available = Math.Min(SmoothedLocked(reading), reading);
        var uncommitted = _lent - CommittedLocked();
        var byCap = (_options.MaxMemory - _lent) / size;
        var byClient = (long)_options.MaxSlabsPerClient - client.Slabs.Count;
        var byHost = (available - _options.Headroom - uncommitted) / size;
        return (uint)Math.Clamp(Math.Min(byCap, Math.Min(byClient, byHost)), 0, uint.MaxValue);
    }

    private long CommittedLocked()
    {
        long committed = 0;
        foreach (var slab in _mapped)
        {
            committed += slab.Device.AllocatedBytes;
        }

        return committed;
    }

    /// <summary>Takes the slab out of the table; its memory goes back when the last request using it ends.</summary>
    private long RemoveLocked(DonorSlab slab)
    {
        var committed = slab.Device.AllocatedBytes;
        Volatile.Write(ref _slots[slab.Id], null);
        var last = _mapped[^1];
        _mapped[slab.MappedIndex] = last;
        last.MappedIndex = slab.MappedIndex;
        _mapped.RemoveAt(_mapped.Count - 1);
        slab.MappedIndex = -1;
        slab.Owner.Slabs.Remove(slab);
        _lent -= slab.Size;
        _freeIds.Push(slab.Id);
        slab.Revoke();
        return committed;
    }

    private void FreeEverything()
    {
        lock (_lock)
        {
            foreach (var client in _clients.Values)
            {
                client.GraceTimer?.Dispose();
                client.GraceTimer = null;
            }

            while (_mapped.Count > 0)
            {
                RemoveLocked(_mapped[^1]);
            }

            _clients.Clear();
        }
    }
}
