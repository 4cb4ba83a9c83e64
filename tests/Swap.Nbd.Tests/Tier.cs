namespace Swap.Nbd.Tests;

/// <summary>
/// The test tiers: every fixture carries exactly one as its <c>[Category]</c>, so a tier runs alone
/// (<c>scripts/test.sh --quick</c> runs unit and integration) and CI runs all of them.
/// </summary>
public static class Tier
{
    /// <summary>Pure code: no sockets, no processes; runs in parallel unless the fixture says otherwise.</summary>
    public const string Unit = "unit";

    /// <summary>Real servers in-process or out/ executables on loopback or Unix sockets in a temp dir.</summary>
    public const string Integration = "integration";

    /// <summary>Real external NBD clients (nbdinfo, nbdcopy, fio, qemu-img) against our server.</summary>
    public const string Interop = "interop";

    /// <summary>The kernel's NBD client in a qemu guest.</summary>
    public const string Kernel = "kernel";

    /// <summary>Swap on this host (nbdfuse, loop devices, memory cgroups).</summary>
    public const string Swap = "swap";

    /// <summary>Every tier, for the check that each fixture names exactly one.</summary>
    public static IReadOnlyList<string> All { get; } = [Unit, Integration, Interop, Kernel, Swap];
}
