
namespace Swap.Donor.Slabs;

/// <summary>One client id (one NBD server): its slabs, its live connections and its grace timer. Guarded by the daemon's lock.</summary>
internal sealed class DonorClient(ulong id)
{
    public ulong Id { get; } = id;

    /// <summary>The slabs it holds; kept by <see cref="DonorSlabTable"/> as slabs are added and removed.</summary>
    public HashSet<DonorSlab> Slabs { get; } = [];

    public List<IClientConnection> Connections { get; } = [];

    /// <summary>Runs while no connection is open; on expiry the slabs are freed.</summary>
    public ITimer? GraceTimer { get; set; }

    /// <summary>Slab size of the client's last ALLOC_SLAB, the unit STATS counts free slabs in.</summary>
    public ulong LastSlabSize { get; set; } = 1UL << 30;

    /// <summary>A connection of this client still open (for an EVICTED notice), or null.</summary>
    public IClientConnection? LiveConnection() => Connections.Find(static c => !c.IsClosed);
}
