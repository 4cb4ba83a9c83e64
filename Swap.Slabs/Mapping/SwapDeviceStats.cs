namespace Swap.Slabs.Mapping;

/// <summary>Where a swap device's pages are: per daemon and on the backup disk only.</summary>
public sealed record SwapDeviceStats(int Slabs, int MappedSlabs, int ActiveSlabs, long PagesWritten, long PagesRemote, IReadOnlyList<DaemonUsage> Daemons)
{
    /// <summary>Written pages whose only current copy is on the backup disk.</summary>
    public long PagesDiskOnly => PagesWritten - PagesRemote;
}

/// <summary>One daemon's share of a swap device.</summary>
public sealed record DaemonUsage(string Name, bool Up, int Slabs, long PagesRemote);
