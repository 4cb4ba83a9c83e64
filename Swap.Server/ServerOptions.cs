using Swap.Common.Configuration;
using Swap.Common.Security;
using Swap.Nbd.Server.Hosting;
using Swap.Slabs.Backup;
using Swap.Slabs.Mapping;

namespace Swap.Server;

/// <summary>
/// Everything that configures swapnbd-server: the NBD side (<see cref="Nbd"/>) and what the export is served from
/// (memory, or slabs on donor daemons with a backup disk), plus the process-level choices of the executable.
/// </summary>
public sealed class ServerOptions
{
    /// <summary>Listeners, export name, connection limits: what the embeddable NBD server needs.</summary>
    public NbdServerOptions Nbd { get; set; } = new();

    /// <summary>Storage behind the export: "memory" (sparse, in-process) or "slabs" (donor daemons + backup disk).</summary>
    public string Backend { get; set; } = "memory";

    /// <summary>Slab mode: where the donor daemons are listed: a portal.list file, dns://NAME:PORT or dns+srv://_SERVICE._PROTO.NAME (<see cref="Swap.Server.Portal.PortalAddress"/>).</summary>
    public string? Portal { get; set; }

    /// <summary>Slab mode, DNS portal: IP:PORT of the name server to ask; null for those in /etc/resolv.conf.</summary>
    public string? DnsServer { get; set; }

    /// <summary>Slab mode, DNS portal: the longest time between two resolutions (they follow the records' TTL, at least 1 s apart).</summary>
    public TimeSpan PortalRefresh { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Slab mode: the file or partition that mirrors every page (at least <see cref="Size"/>).</summary>
    public string? BackupDisk { get; set; }

    /// <summary>
    /// Slab mode: "auto" (direct I/O where the backup disk allows it, else buffered with a warning), "direct" (O_DIRECT
    /// or refuse to start) or "buffered" (through the page cache).
    /// </summary>
    public string BackupIo { get; set; } = "auto";

    /// <summary>Slab mode: <see cref="BackupIo"/> as a mode; valid once <see cref="Validate"/> found no error.</summary>
    public BackupIoMode BackupIoMode => BackupIo switch
    {
        "direct" => BackupIoMode.Direct,
        "buffered" => BackupIoMode.Buffered,
        _ => BackupIoMode.Auto,
    };

    /// <summary>
    /// Slab mode: the cluster key file (swapnbd-daemon keygen) this server proves to its daemons and they to it.
    /// Required in slab mode unless <see cref="InsecureNoAuth"/>.
    /// </summary>
    public string? AuthKeyFile { get; set; }

    /// <summary>Slab mode: talk to daemons without the cluster key (they must run with --insecure-no-auth too).</summary>
    public bool InsecureNoAuth { get; set; }

    /// <summary>Slab mode: slab size, daemon timeouts, placement retry.</summary>
    public SwapDeviceOptions Slabs { get; set; } = new();

    /// <summary>Export size in bytes.</summary>
    public long Size { get; set; } = 1L << 30;

    /// <summary>File rewritten every second with JSON saying where the pages are (per daemon, backup disk); null for none.</summary>
    public string? StatusFile { get; set; }

    /// <summary>HOST:PORT serving the metrics in Prometheus' text format (GET /metrics); null for none.</summary>
    public string? MetricsListen { get; set; }

    /// <summary>
    /// mlockall at start, so no page the server needs to answer a swap request is itself swapped out. Applied by the
    /// executable (<see cref="ServerCommand"/>): locking is process-wide, so an embedding host decides for itself.
    /// </summary>
    public bool LockMemory { get; set; } = true;

    /// <summary>
    /// SCHED_RR at this priority (1-99) for every thread the server starts; 0 (the default) leaves the normal policy.
    /// For whole-machine swap: a real-time task may allocate below the min watermark, so the socket buffers of the
    /// server's replies and daemon sends are found while every normal task waits in reclaim for the swap-outs the
    /// server is completing (docs/operations.md, "Whole-machine swap"). Needs CAP_SYS_NICE (or RLIMIT_RTPRIO).
    /// Applied by the executable (<see cref="ServerCommand"/>).
    /// </summary>
    public int RealtimePriority { get; set; }

    /// <summary>Every problem with these options, each starting with the key it concerns; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>(Nbd.Validate());
        if (RealtimePriority is < 0 or > 99)
        {
            errors.Add($"RealtimePriority: {RealtimePriority} is not a SCHED_RR priority; use 1-99 (1 is enough: it only has to beat normal tasks), or 0 for the normal policy");
        }

        if (Backend is not ("memory" or "slabs"))
        {
            errors.Add($"Backend: '{Backend}' is not a backend; use 'memory' or 'slabs'");
        }

        if (Backend == "slabs")
        {
            if (string.IsNullOrWhiteSpace(Portal))
            {
                errors.Add("Portal: slab mode needs --portal FILE (portal.list: a count line, then one HOST:PORT per daemon), --portal dns://NAME:PORT or --portal dns+srv://_SERVICE._PROTO.NAME");
            }
            else if (Swap.Server.Portal.PortalAddress.Problem(Portal) is { } portalProblem)
            {
                errors.Add($"Portal: {portalProblem}");
            }

            if (DnsServer is not null && Swap.Server.Portal.PortalSources.DnsServerProblem(DnsServer) is { } dnsProblem)
            {
                errors.Add($"DnsServer: --dns-server {dnsProblem}");
            }

            if (PortalRefresh < TimeSpan.FromSeconds(1))
            {
                errors.Add("PortalRefresh: must be at least 1 second (e.g. 30)");
            }

            if (string.IsNullOrWhiteSpace(BackupDisk))
            {
                errors.Add("BackupDisk: slab mode needs --backup-disk PATH (a file or partition of at least --size)");
            }

            if (BackupIo is not ("auto" or "direct" or "buffered"))
            {
                errors.Add($"BackupIo: '{BackupIo}' is not a backup disk I/O mode; use 'auto' (direct where possible), 'direct' (O_DIRECT or refuse to start) or 'buffered' (page cache)");
            }

            if (AuthKeyFile is null)
            {
                if (!InsecureNoAuth)
                {
                    errors.Add("AuthKeyFile: slab mode talks only to daemons that hold the cluster key: give --auth-key-file PATH " +
                        "(the file the daemons have; create it once with swapnbd-daemon keygen PATH), or --insecure-no-auth " +
                        "to send pages to whoever answers on the portal's addresses");
                }
            }
            else if (InsecureNoAuth)
            {
                errors.Add("InsecureNoAuth: --insecure-no-auth and --auth-key-file exclude each other; drop one");
            }
            else if (ClusterKeyFile.Problem(AuthKeyFile) is { } problem)
            {
                errors.Add($"AuthKeyFile: --auth-key-file {problem}");
            }

            if (Size % 4096 != 0)
            {
                errors.Add("Size: slab mode needs a multiple of 4096 (e.g. 12GiB)");
            }

            errors.AddRange(Slabs.Validate());
        }
        else if (Portal is not null || BackupDisk is not null)
        {
            errors.Add("Portal/BackupDisk: only used with --backend slabs (the default when --portal is given)");
        }
        else if (AuthKeyFile is not null)
        {
            errors.Add("AuthKeyFile: only used with --backend slabs (the memory backend has no donors)");
        }

        if (Size <= 0)
        {
            errors.Add("Size: must be positive (e.g. 1GiB)");
        }

        if (StatusFile is not null && Common.Status.StatusFile.Check("StatusFile", StatusFile, Status.StatusView.DefaultPath) is { } statusError)
        {
            errors.Add(statusError);
        }

        if (MetricsListen is not null && MetricsEndpoint.Check("MetricsListen", MetricsListen) is { } metricsError)
        {
            errors.Add(metricsError);
        }

        return errors;
    }
}
