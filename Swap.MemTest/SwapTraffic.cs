using System.Globalization;

namespace Swap.MemTest;

/// <summary>
/// The kernel's swap counters in /proc/vmstat, in pages: swapped in, swapped out, read ahead by swap readahead and the
/// read-ahead pages a fault then found. They count every process on the machine (a benchmark runs alone), and a phase's
/// traffic is the difference of two readings: whether a phase rewrote the pages it evicted, and what readahead did.
/// </summary>
public readonly record struct SwapTraffic(long In, long Out, long ReadAhead, long ReadAheadHits)
{
    public const string VmStat = "/proc/vmstat";

    /// <summary>The counters now; zeros when the kernel does not show them (a reading minus another is then zero too).</summary>
    public static SwapTraffic Read(string path = VmStat)
    {
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return default;
        }
    }

    /// <summary>The four counters from /proc/vmstat's "name value" lines; a missing or malformed one is 0.</summary>
    public static SwapTraffic Parse(string vmstat)
    {
        long swapIn = 0, swapOut = 0, readAhead = 0, hits = 0;
        foreach (var line in vmstat.Split('\n'))
        {
            var space = line.IndexOf(' ');
            if (space <= 0 || !long.TryParse(line.AsSpan(space + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            switch (line[..space])
            {
                case "pswpin": swapIn = value; break;
                case "pswpout": swapOut = value; break;
                case "swap_ra": readAhead = value; break;
                case "swap_ra_hit": hits = value; break;
            }
        }

        return new SwapTraffic(swapIn, swapOut, readAhead, hits);
    }

    public static SwapTraffic operator -(SwapTraffic after, SwapTraffic before) =>
        new(after.In - before.In, after.Out - before.Out, after.ReadAhead - before.ReadAhead, after.ReadAheadHits - before.ReadAheadHits);

    public static SwapTraffic operator +(SwapTraffic a, SwapTraffic b) =>
        new(a.In + b.In, a.Out + b.Out, a.ReadAhead + b.ReadAhead, a.ReadAheadHits + b.ReadAheadHits);

    /// <summary>"IN/OUT" in MiB (pages of 4 KiB, rounded down).</summary>
    public string InOutMiB => string.Create(CultureInfo.InvariantCulture, $"{In >> 8}/{Out >> 8}");

    /// <summary>"READ_AHEAD/HITS" in MiB.</summary>
    public string ReadAheadMiB => string.Create(CultureInfo.InvariantCulture, $"{ReadAhead >> 8}/{ReadAheadHits >> 8}");
}
