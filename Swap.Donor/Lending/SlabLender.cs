using Microsoft.Extensions.Logging;
using Swap.Daemon.Protocol;
using Swap.Donor.Eviction;
using Swap.Donor.Slabs;

namespace Swap.Donor.Lending;

/// <summary>
/// The lending arithmetic and the requests that apply it: QUERY_FREE, ALLOC_SLAB, FREE_SLAB and STATS, within
/// MaxMemory, MaxSlabsPerClient and what the host can still give above its headroom. Takes the daemon's lock: the
/// answer depends on the slab table, the client registry and the smoothed MemAvailable at one instant.
/// </summary>
internal sealed class SlabLender(
    Lock gate, DonorSlabTable slabs, DonorClientRegistry clients, SmoothedMemAvailable smoothed, IMemoryAvailability memory,
    DonorOptions options, TimeProvider time, ILogger logger)
{
    public DaemonStatus QueryFree(DonorClient client, ulong slabSize, out uint free)
    {
        free = 0;
        if (!options.AcceptsSlabSize(slabSize))
        {
            return DaemonStatus.Invalid;
        }

        var reading = memory.GetAvailableBytes();
        lock (gate)
        {
            free = FreeSlabsLocked(client, (long)slabSize, reading);
            return DaemonStatus.Ok;
        }
    }

    public DaemonStatus Allocate(DonorClient client, SlabAllocRequest request, out SlabGrant grant)
    {
        grant = default;
        if (!options.AcceptsSlabSize(request.SlabSize))
        {
            return DaemonStatus.Invalid;
        }

        var size = (long)request.SlabSize;
        var reading = memory.GetAvailableBytes();
        lock (gate)
        {
            if (FreeSlabsLocked(client, size, reading) == 0 || !clients.IsKnownLocked(client))
            {
                return DaemonStatus.NoSpace;
            }

            var slab = slabs.AddLocked(client, size, time.GetTimestamp());
            client.LastSlabSize = request.SlabSize;
            grant = new SlabGrant(slab.Id, slab.Epoch);
            DonorLog.SlabAllocated(logger, slab.Id, slab.Epoch, size, client.Id, request.ServerSlabIndex);
            return DaemonStatus.Ok;
        }
    }

    public DaemonStatus FreeSlab(DonorClient client, SlabRange slabRef)
    {
        lock (gate)
        {
            var slab = slabs.Find(slabRef.SlabId);
            if (slab is null || slab.Epoch != slabRef.Epoch || slab.Owner != client)
            {
                return DaemonStatus.Stale;
            }

            slabs.RemoveLocked(slab);
            DonorLog.SlabFreed(logger, slab.Id, slab.Epoch, client.Id);
            return DaemonStatus.Ok;
        }
    }

    public DaemonStats Stats(DonorClient client)
    {
        var reading = memory.GetAvailableBytes();
        lock (gate)
        {
            var free = FreeSlabsLocked(client, (long)client.LastSlabSize, reading);
            return new DaemonStats((ulong)slabs.LentLocked, (ulong)Math.Max(0, reading), (uint)slabs.CountLocked, free);
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
        var available = Math.Min(smoothed.ValueOr(reading), reading);
        var lent = slabs.LentLocked;
        var uncommitted = lent - slabs.CommittedLocked();
        var byCap = (options.MaxMemory - lent) / size;
        var byClient = (long)options.MaxSlabsPerClient - client.Slabs.Count;
        var byHost = (available - options.Headroom - uncommitted) / size;
        return (uint)Math.Clamp(Math.Min(byCap, Math.Min(byClient, byHost)), 0, uint.MaxValue);
    }
}
