namespace Swap.Common.Hosting;

/// <summary>What <see cref="ProcessGuard"/> achieved, step by step, with the errno of each refusal (0 when none).</summary>
public sealed record ProcessGuardResult
{
    /// <summary>mlockall: every page of the process stays in RAM.</summary>
    public ProcessGuardStep MemoryLock { get; init; }

    public int MemoryLockErrno { get; init; }

    /// <summary>Whether what was mapped at the time was read in whole (MCL_CURRENT without MCL_ONFAULT).</summary>
    public bool MemoryLockPopulated { get; init; }

    /// <summary>RLIMIT_MEMLOCK when memory was locked or tried: soft and hard, <see cref="ulong.MaxValue"/> for unlimited.</summary>
    public (ulong Soft, ulong Hard) MemlockLimit { get; init; }

    /// <summary>prctl(PR_SET_IO_FLUSHER): this thread and the threads it starts allocate without waiting on I/O.</summary>
    public ProcessGuardStep IoFlusher { get; init; }

    public int IoFlusherErrno { get; init; }

    /// <summary>/proc/self/oom_score_adj lowered so the OOM killer passes this process by.</summary>
    public ProcessGuardStep OomScoreAdj { get; init; }

    public int OomScoreAdjValue { get; init; }

    /// <summary>Why writing oom_score_adj failed, null when it did not.</summary>
    public string? OomScoreAdjError { get; init; }

    /// <summary>The SCHED_RR priority asked for (0: none asked for, the normal policy).</summary>
    public int RealtimePriority { get; init; }

    /// <summary>Why sched_setscheduler refused it (0 when it did not, or none was asked for).</summary>
    public int RealtimeErrno { get; init; }

    /// <summary>The GC's hard heap limit in bytes (GCHeapHardLimit), 0 when none.</summary>
    public long GcHeapHardLimit { get; init; }
}
