using Microsoft.Extensions.Logging;

namespace Swap.Common.Hosting;

/// <summary>Source-generated log messages of <see cref="ProcessGuard"/>, with stable event ids (900–909).</summary>
public static partial class ProcessGuardLog
{
    /// <summary>One line per step that was asked for, a loud warning for each the kernel refused.</summary>
    public static void Report(ILogger logger, ProcessGuardResult result)
    {
        var limit = FormatLimit(result.MemlockLimit);
        switch (result.MemoryLock)
        {
            case ProcessGuardStep.Done:
                MemoryLocked(logger, result.MemoryLockPopulated ? "mapped now read in and locked" : "locked as touched", limit);
                break;
            case ProcessGuardStep.Failed:
                MemoryLockFailed(logger, ProcessGuard.ErrnoName(result.MemoryLockErrno), limit);
                break;
            default:
                MemoryLockOff(logger);
                break;
        }

        switch (result.IoFlusher)
        {
            case ProcessGuardStep.Done:
                IoFlusherSet(logger);
                break;
            case ProcessGuardStep.Failed:
                IoFlusherFailed(logger, ProcessGuard.ErrnoName(result.IoFlusherErrno));
                break;
        }

        switch (result.OomScoreAdj)
        {
            case ProcessGuardStep.Done:
                OomScoreAdjSet(logger, result.OomScoreAdjValue);
                break;
            case ProcessGuardStep.Failed:
                OomScoreAdjFailed(logger, result.OomScoreAdjValue, result.OomScoreAdjError ?? "?");
                break;
        }

        if (result.RealtimePriority > 0)
        {
            if (result.RealtimeErrno == 0)
            {
                RealtimeSet(logger, result.RealtimePriority);
            }
            else
            {
                RealtimeFailed(logger, result.RealtimePriority, ProcessGuard.ErrnoName(result.RealtimeErrno));
            }
        }

        if (result.GcHeapHardLimit > 0)
        {
            GcHeapLimit(logger, result.GcHeapHardLimit >> 20);
        }
    }

    private static string FormatLimit((ulong Soft, ulong Hard) limit)
    {
        static string One(ulong value) => value == ulong.MaxValue ? "unlimited" : $"{value} bytes";
        return limit.Soft == limit.Hard ? One(limit.Soft) : $"{One(limit.Soft)} (hard limit {One(limit.Hard)})";
    }

    [LoggerMessage(900, LogLevel.Information, "Memory locked (mlockall): pages {Current}, later mappings locked as touched (MCL_FUTURE|MCL_ONFAULT); RLIMIT_MEMLOCK {Limit}")]
    private static partial void MemoryLocked(ILogger logger, string current, string limit);

    [LoggerMessage(901, LogLevel.Warning,
        "MEMORY NOT LOCKED: mlockall failed with {Error}; RLIMIT_MEMLOCK is {Limit}. Pages of this process can be swapped out, " +
        "and a process that serves swap can deadlock the machine waiting for its own page. Fix: raise the limit " +
        "(`ulimit -l unlimited`, systemd LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK; --lock-memory false silences this")]
    private static partial void MemoryLockFailed(ILogger logger, string error, string limit);

    [LoggerMessage(902, LogLevel.Information, "Memory locking off (LockMemory false): pages of this process can be swapped out")]
    private static partial void MemoryLockOff(ILogger logger);

    [LoggerMessage(903, LogLevel.Information, "PR_SET_IO_FLUSHER set: allocations of this process do not wait on block I/O")]
    private static partial void IoFlusherSet(ILogger logger);

    [LoggerMessage(904, LogLevel.Warning,
        "prctl(PR_SET_IO_FLUSHER) failed with {Error} (needs CAP_SYS_RESOURCE and Linux 5.6+): under memory pressure an allocation here may wait on swap I/O to this device")]
    private static partial void IoFlusherFailed(ILogger logger, string error);

    [LoggerMessage(908, LogLevel.Information, "Threads scheduled SCHED_RR at priority {Priority}: their allocations may go below the min watermark, ahead of the tasks swapping to this server")]
    private static partial void RealtimeSet(ILogger logger, int priority);

    [LoggerMessage(909, LogLevel.Warning,
        "Cannot schedule the server's threads SCHED_RR at priority {Priority} ({Error}; needs CAP_SYS_NICE, RLIMIT_RTPRIO or systemd CPUSchedulingPolicy=rr): under global memory pressure its socket buffers wait in reclaim like every other task's")]
    private static partial void RealtimeFailed(ILogger logger, int priority, string error);

    [LoggerMessage(905, LogLevel.Information, "oom_score_adj set to {Value}")]
    private static partial void OomScoreAdjSet(ILogger logger, int value);

    [LoggerMessage(906, LogLevel.Warning,
        "Cannot set oom_score_adj to {Value} ({Error}; lowering it needs CAP_SYS_RESOURCE, or systemd OOMScoreAdjust=-1000): the OOM killer may pick this process")]
    private static partial void OomScoreAdjFailed(ILogger logger, int value, string error);

    [LoggerMessage(907, LogLevel.Information, "GC heap hard limit {LimitMiB} MiB")]
    private static partial void GcHeapLimit(ILogger logger, long limitMiB);
}
