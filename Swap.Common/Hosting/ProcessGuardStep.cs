namespace Swap.Common.Hosting;

/// <summary>How one step of <see cref="ProcessGuard"/> went.</summary>
public enum ProcessGuardStep
{
    /// <summary>Not asked for (turned off by configuration, or not wanted by this program).</summary>
    Off,

    /// <summary>Done.</summary>
    Done,

    /// <summary>Tried and refused by the kernel; the process runs on without it.</summary>
    Failed,
}
