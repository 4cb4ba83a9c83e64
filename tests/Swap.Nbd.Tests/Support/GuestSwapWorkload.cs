using System.Globalization;
using System.Text.RegularExpressions;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// scripts/kernel/guests/swap-workload.sh seen from the host: its parameters (as run-guest.sh --env values) and the
/// lines it prints (progress while it writes, the summary when it passes).
/// </summary>
internal sealed partial record GuestSwapWorkload(int WorkMiB, int LimitMiB, int ChunkMiB)
{
    public IEnumerable<string> Env =>
    [
        $"SWAP_WORK_MIB={WorkMiB.ToString(CultureInfo.InvariantCulture)}",
        $"SWAP_LIMIT_MIB={LimitMiB.ToString(CultureInfo.InvariantCulture)}",
        $"SWAP_CHUNK_MIB={ChunkMiB.ToString(CultureInfo.InvariantCulture)}",
    ];

    /// <summary>The least swap the guest must have used: everything written past the group's limit has nowhere else to go.</summary>
    public int MinimumPeakSwapMiB => WorkMiB - (2 * LimitMiB);

    /// <summary>A write-phase progress line: "SWAP-WORK: wrote N/W MiB, swap S MiB".</summary>
    public static bool TryParseProgress(string line, out int wroteMiB, out int swapMiB)
    {
        var m = ProgressLine().Match(line);
        wroteMiB = m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        swapMiB = m.Success ? int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) : 0;
        return m.Success;
    }

    /// <summary>The summary line of a pass: "SWAP-WORK: PASS work W MiB, limit L MiB, peak swap P MiB, write T1 s, verify T2 s".</summary>
    public static Summary? FindSummary(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            var m = PassLine().Match(line);
            if (m.Success)
            {
                int At(int group) => int.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);
                return new Summary(At(1), At(2), At(3), TimeSpan.FromSeconds(At(4)), TimeSpan.FromSeconds(At(5)));
            }
        }

        return null;
    }

    [GeneratedRegex(@"^SWAP-WORK: wrote (\d+)/(\d+) MiB, swap (\d+) MiB$")]
    private static partial Regex ProgressLine();

    [GeneratedRegex(@"^SWAP-WORK: PASS work (\d+) MiB, limit (\d+) MiB, peak swap (\d+) MiB, write (\d+) s, verify (\d+) s$")]
    private static partial Regex PassLine();

    /// <summary>What a passing run reports.</summary>
    public sealed record Summary(int WorkMiB, int LimitMiB, int PeakSwapMiB, TimeSpan Write, TimeSpan Verify);
}
