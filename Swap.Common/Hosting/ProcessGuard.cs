namespace Swap.Common.Hosting;

/// <summary>
/// Makes the process fit to serve swap (design.md, "Rules for a process that serves swap"): its pages stay in RAM
/// (mlockall), its allocations do not wait on the I/O it is there to complete (PR_SET_IO_FLUSHER), and the OOM killer
/// passes it by (oom_score_adj). Every step is best effort; the result says what the kernel refused.
/// </summary>
public static class ProcessGuard
{
    /// <summary>
    /// mlockall flags for what is mapped later. MCL_ONFAULT locks a page when it is first touched instead of
    /// committing every new mapping whole: plain MCL_FUTURE commits each thread stack and GC region in full (RSS
    /// several times larger, measured in docs/operations.md) and each 2 MiB chunk of a sparse memory device on mmap.
    /// The I/O path touches its buffers when it allocates them (<see cref="Buffers.PinnedBufferPool"/>), so what it
    /// uses is locked before a request needs it.
    /// </summary>
    public const int FutureLockFlags = ProcessGuardNative.MclFuture | ProcessGuardNative.MclOnFault;

    public const int OomScoreAdjMinimum = -1000;

    /// <summary>
    /// prctl(PR_SET_IO_FLUSHER, 1) on the calling thread. The flag is per thread and inherited by threads started
    /// afterwards, so call it first thing in Main: every thread the program starts later (connection threads, the
    /// thread pool) has it. The runtime's finalizer thread, started before Main, is marked from a finalizer.
    /// </summary>
    /// <summary>
    /// SCHED_RR at <paramref name="priority"/> for the calling thread and the threads it starts later (call it before
    /// any are started; the runtime's finalizer thread, started before Main, is set too); 0, or the errno of the
    /// refusal (EPERM without CAP_SYS_NICE or RLIMIT_RTPRIO).
    /// </summary>
    public static int SetRoundRobin(int priority)
    {
        static int Set(int priority) => ProcessGuardNative.SetScheduler(ProcessGuardNative.SchedRr, priority);
        var errno = Set(priority);
        if (errno == 0 && FinalizerThreadCall.Run(() => Set(priority)) is { } finalizerErrno && finalizerErrno != 0)
        {
            errno = finalizerErrno;
        }

        return errno;
    }

    public static (ProcessGuardStep Step, int Errno) SetIoFlusher()
    {
        var errno = ProcessGuardNative.Prctl(ProcessGuardNative.PrSetIoFlusher, 1, out _);
        if (errno == 0 && FinalizerThreadCall.Run(static () => ProcessGuardNative.Prctl(ProcessGuardNative.PrSetIoFlusher, 1, out _)) is { } finalizerErrno && finalizerErrno != 0)
        {
            errno = finalizerErrno;
        }

        return (errno == 0 ? ProcessGuardStep.Done : ProcessGuardStep.Failed, errno);
    }

    /// <summary>Locks memory (when asked) and lowers oom_score_adj (when a value is given); never throws.</summary>
    /// <param name="lockMemory">mlockall: what is mapped now (see <paramref name="populate"/>), and
    /// <see cref="FutureLockFlags"/> for what is mapped later.</param>
    /// <param name="populate">
    /// Read in and lock every page mapped now (MCL_CURRENT without MCL_ONFAULT): the whole executable and its libraries,
    /// so a code path first taken under memory pressure (a daemon failing, a shutdown) does not wait for its code to be
    /// read from disk. False locks those pages only as they are touched.
    /// </param>
    /// <param name="oomScoreAdj">Value for /proc/self/oom_score_adj (-1000 exempts the process), null to leave it.</param>
    /// <param name="ioFlusher">The outcome of an earlier <see cref="SetIoFlusher"/>, carried into the result.</param>
    /// <param name="lockLaterOnFault">
    /// True (the default, <see cref="FutureLockFlags"/>) locks later mappings page by page as they are touched. False
    /// commits each later mapping whole when it is made (plain MCL_FUTURE; with <paramref name="populate"/> one call
    /// mlockall(MCL_CURRENT|MCL_FUTURE), as nbd-client -swap makes): for a small process off the I/O path that only has
    /// to survive to reconnect. <see cref="ProcessGuardLog"/> describes the default.
    /// </param>
    public static ProcessGuardResult Apply(
        bool lockMemory, bool populate, int? oomScoreAdj, (ProcessGuardStep Step, int Errno) ioFlusher = default, bool lockLaterOnFault = true)
    {
        var lockErrno = lockMemory ? Lock(populate, lockLaterOnFault) : 0;
        string? oomError = null;
        if (oomScoreAdj is { } adj)
        {
            oomError = WriteOomScoreAdj(adj);
        }

        return new ProcessGuardResult
        {
            MemoryLockPopulated = lockMemory && populate && lockErrno == 0,
            MemoryLock = !lockMemory ? ProcessGuardStep.Off : lockErrno == 0 ? ProcessGuardStep.Done : ProcessGuardStep.Failed,
            MemoryLockErrno = lockErrno,
            MemlockLimit = ProcessGuardNative.MemlockLimit(),
            IoFlusher = ioFlusher.Step,
            IoFlusherErrno = ioFlusher.Errno,
            OomScoreAdj = oomScoreAdj is null ? ProcessGuardStep.Off : oomError is null ? ProcessGuardStep.Done : ProcessGuardStep.Failed,
            OomScoreAdjValue = oomScoreAdj ?? 0,
            OomScoreAdjError = oomError,
            GcHeapHardLimit = GcHeapHardLimit(),
        };
    }

    private static int Lock(bool populate, bool laterOnFault)
    {
        var current = populate ? ProcessGuardNative.MclCurrent : ProcessGuardNative.MclCurrent | ProcessGuardNative.MclOnFault;
        var later = laterOnFault ? FutureLockFlags : ProcessGuardNative.MclFuture;
        if ((current & ProcessGuardNative.MclOnFault) == (later & ProcessGuardNative.MclOnFault))
        {
            return ProcessGuardNative.LockAll(current | later);
        }

        // MCL_ONFAULT applies to both in one call, so two calls: the first (MCL_CURRENT) reads in and locks what is
        // mapped now; the second sets the flags for later mappings and, with MCL_CURRENT|MCL_ONFAULT, turns every
        // current mapping to lock-on-fault too: its pages stay resident and locked, but a part of it made accessible
        // later (the GC commits regions of the range it reserved at start with mprotect) is no longer read in whole
        // by that mprotect, which the kernel does holding mmap_lock for writing. Under global memory pressure that
        // populate waits in reclaim, and every other thread of the process that faults or maps waits behind the lock
        // (seen in the whole-machine test: an nbd-connection thread in mprotect -> populate -> reclaim).
        var errno = ProcessGuardNative.LockAll(current);
        if (errno != 0 || !laterOnFault)
        {
            return errno != 0 ? errno : ProcessGuardNative.LockAll(later);
        }

        return ProcessGuardNative.LockAll(ProcessGuardNative.MclCurrent | later);
    }

    /// <summary>The VmLck and VmRSS lines of /proc/self/status ("VmLck: 1234 kB, VmRSS: 5678 kB"), for a log line.</summary>
    public static string LockedMemory()
    {
        try
        {
            var fields = File.ReadLines("/proc/self/status")
                .Where(l => l.StartsWith("VmLck:", StringComparison.Ordinal) || l.StartsWith("VmRSS:", StringComparison.Ordinal))
                .Select(l => l.Replace("\t", " ", StringComparison.Ordinal).Trim());
            return string.Join(", ", fields);
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>The GC's effective hard heap limit (runtimeconfig GCHeapHardLimit or DOTNET_GCHeapHardLimit), 0 when none.</summary>
    public static long GcHeapHardLimit() =>
        GC.GetConfigurationVariables().TryGetValue("GCHeapHardLimit", out var value) && value is IConvertible convertible
            ? convertible.ToInt64(System.Globalization.CultureInfo.InvariantCulture)
            : 0;

    /// <summary>A name for an errno that an operator can search for: "EPERM (Operation not permitted)".</summary>
    public static string ErrnoName(int errno)
    {
        var name = errno switch
        {
            1 => "EPERM",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            22 => "EINVAL",
            38 => "ENOSYS",
            _ => $"errno {errno}",
        };
        return $"{name} ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)})";
    }

    private static string? WriteOomScoreAdj(int value)
    {
        try
        {
            // Lowering it needs CAP_SYS_RESOURCE: the write fails with EACCES without it.
            File.WriteAllText("/proc/self/oom_score_adj", value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }
}
