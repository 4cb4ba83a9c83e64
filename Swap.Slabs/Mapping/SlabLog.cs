using Microsoft.Extensions.Logging;

namespace Swap.Slabs.Mapping;

/// <summary>Log messages of the slab layer (event ids 350-399).</summary>
internal static partial class SlabLog
{
    [LoggerMessage(350, LogLevel.Information, "Slab {Slab} placed on {Daemon} (slab id {SlabId}, epoch {Epoch})")]
    public static partial void Placed(ILogger logger, int slab, string daemon, uint slabId, uint epoch);

    [LoggerMessage(351, LogLevel.Warning, "Slab {Slab} unmapped from {Daemon}: {Reason}; serving it from the backup disk")]
    public static partial void Unmapped(ILogger logger, int slab, string daemon, string reason);

    [LoggerMessage(352, LogLevel.Information, "Slab {Slab} stays on the backup disk for now: {Reason}; retrying in {Delay}")]
    public static partial void NotPlaced(ILogger logger, int slab, string reason, TimeSpan delay);

    [LoggerMessage(353, LogLevel.Information, "Slab {Slab} filled on {Daemon}: {Pages} pages copied from the backup disk")]
    public static partial void Filled(ILogger logger, int slab, string daemon, long pages);

    [LoggerMessage(354, LogLevel.Error, "Backup disk error: {Message}")]
    public static partial void DiskError(ILogger logger, string message);

    [LoggerMessage(365, LogLevel.Error, "Backup disk: {Count} more errors were not logged (at most {Burst} every {Seconds} s; the swapnbd.backup.errors metric counts every one)")]
    public static partial void DiskErrorsSuppressed(ILogger logger, long count, int burst, double seconds);

    [LoggerMessage(355, LogLevel.Warning, "Slab {Slab}: fill from the backup disk failed: {Message}")]
    public static partial void FillFailed(ILogger logger, int slab, string message);

    [LoggerMessage(356, LogLevel.Warning, "Daemon {Daemon} returned page {Page} of slab {Slab} (daemon slab id {SlabId}) that fails to open: not what this server sealed there; read from the backup disk instead")]
    public static partial void PageOpenFailed(ILogger logger, string daemon, long page, int slab, uint slabId);

    [LoggerMessage(357, LogLevel.Error, "Daemon {Daemon} failed: {Slabs} of its slabs returned pages that fail to open within {Window}; its slabs go elsewhere")]
    public static partial void DaemonUntrusted(ILogger logger, string daemon, int slabs, TimeSpan window);

    [LoggerMessage(358, LogLevel.Information, "Pages leave this server sealed: {Algorithm} under a key drawn at start and held only in this process; {VersionBytes} bytes of page versions")]
    public static partial void Sealing(ILogger logger, string algorithm, long versionBytes);

    [LoggerMessage(360, LogLevel.Warning, "Daemon {Daemon} rejoined after {Failures} failure(s) in a row: no new slabs on it for {Probation} (a flapping link would take slabs and lose them again)")]
    public static partial void Probation(ILogger logger, string daemon, int failures, TimeSpan probation);

    [LoggerMessage(359, LogLevel.Warning, "SealPages is off: every donor daemon can read and change the pages it holds. Use this only to measure what sealing costs")]
    public static partial void NotSealing(ILogger logger);

    [LoggerMessage(361, LogLevel.Information, "Daemon {Daemon} joined the portal: it takes slabs as soon as its link is up")]
    public static partial void DaemonAdded(ILogger logger, string daemon);

    [LoggerMessage(362, LogLevel.Information, "Daemon {Daemon} left the portal: draining it ({Slabs} slabs go to other daemons, or wait on the backup disk when none has room), then its link closes")]
    public static partial void Draining(ILogger logger, string daemon, int slabs);

    [LoggerMessage(363, LogLevel.Information, "Daemon {Daemon} drained in {Elapsed}: {Elsewhere} of its slabs now on other daemons, {DiskOnly} on the backup disk only; link closed")]
    public static partial void Drained(ILogger logger, string daemon, TimeSpan elapsed, int elsewhere, int diskOnly);

    [LoggerMessage(364, LogLevel.Information, "Daemon {Daemon} is back in the portal before its drain ended: it stays and takes slabs again")]
    public static partial void DrainCancelled(ILogger logger, string daemon);
}
