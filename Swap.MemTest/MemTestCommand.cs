using System.Diagnostics;
using System.Globalization;
using Swap.Common.Units;

namespace Swap.MemTest;

/// <summary>The swapnbd-memtest executable: options in, the workload run, one summary line and an exit code out.</summary>
public static class MemTestCommand
{
    public const int ExitOk = 0;
    public const int ExitMismatch = 1;
    public const int ExitUsage = 2;
    public const int ExitNoMemory = 3;

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        var errors = new List<string>();
        var options = MemTestOptions.Parse(args, errors);
        if (options.Help)
        {
            stdout.WriteLine(MemTestOptions.Usage);
            return ExitOk;
        }

        if (errors.Count > 0)
        {
            foreach (var error in errors)
            {
                stderr.WriteLine($"swapnbd-memtest: {error}");
            }

            stderr.WriteLine("swapnbd-memtest: see --help");
            return ExitUsage;
        }

        MemTestRun run;
        try
        {
            run = new MemTestRun(options.Size, options.Seed);
        }
        catch (InsufficientMemoryException ex)
        {
            stderr.WriteLine($"swapnbd-memtest: {ex.Message}");
            return ExitNoMemory;
        }

        using (run)
        using (var sampler = new SwapSampler(TimeSpan.FromMilliseconds(200)))
        {
            var total = Stopwatch.StartNew();
            var fill = Phase(options, stderr, "fill", run.Fill);
            PhaseCost touch = default, verify = default;
            for (var pass = 1; pass <= options.Passes; pass++)
            {
                touch += Phase(options, stderr, $"pass {pass}: {options.TouchesPerPass} touches", () => run.Touch(options.TouchesPerPass));
                verify += Phase(options, stderr, $"pass {pass}: verify", run.VerifyAll);
            }

            var swapPeak = Math.Max(sampler.Peak, SwapSampler.Current());
            stdout.WriteLine(Summary(run, total.Elapsed, fill, touch, verify, swapPeak, CgroupMemory.Current()));
            return run.Mismatches == 0 ? ExitOk : ExitMismatch;
        }
    }

    /// <summary>
    /// One line, key=value after the verdict, so a script or test can pick fields out:
    /// <c>swapnbd-memtest: PASS pages=262144 size=1GiB touches=262144 mismatches=0 seconds=41.3 fill=8.1 touch=20.0 verify=13.2 swap_peak=790MiB max_page_ms=2.1 swap_mib=fill:0/812,touch:1534/1540,verify:1010/620 swap_ra_mib=fill:0/0,touch:12/3,verify:980/975 cgroup=/x limit=256MiB</c>;
    /// max_page_ms is the longest the workload waited on one page (<see cref="MemTestRun.LongestPage"/>); swap_mib is
    /// each phase's swap-ins/swap-outs and swap_ra_mib its swap readahead/readahead hits, machine-wide
    /// (<see cref="SwapTraffic"/>).
    /// </summary>
    public static string Summary(MemTestRun run, TimeSpan total, PhaseCost fill, PhaseCost touch, PhaseCost verify, long swapPeak, CgroupMemory? cgroup)
    {
        var line = string.Create(CultureInfo.InvariantCulture,
            $"swapnbd-memtest: {(run.Mismatches == 0 ? "PASS" : "FAIL")} pages={run.Pages} size={ByteSize.Format(run.Pages * PagePattern.PageSize)} " +
            $"touches={run.Touches} mismatches={run.Mismatches} seconds={total.TotalSeconds:F1} fill={fill.Time.TotalSeconds:F1} " +
            $"touch={touch.Time.TotalSeconds:F1} verify={verify.Time.TotalSeconds:F1} swap_peak={swapPeak >> 20}MiB max_page_ms={run.LongestPage.TotalMilliseconds:F1} " +
            $"swap_mib=fill:{fill.Swap.InOutMiB},touch:{touch.Swap.InOutMiB},verify:{verify.Swap.InOutMiB} " +
            $"swap_ra_mib=fill:{fill.Swap.ReadAheadMiB},touch:{touch.Swap.ReadAheadMiB},verify:{verify.Swap.ReadAheadMiB}");
        if (cgroup is not null)
        {
            line += $" cgroup={cgroup.Path} limit={(cgroup.Limit is { } limit ? ByteSize.Format(limit) : "none")}";
        }

        return run.FirstMismatch is null ? line : line + " first_bad: " + run.FirstMismatch;
    }

    private static PhaseCost Phase(MemTestOptions options, TextWriter stderr, string name, Action action)
    {
        var before = SwapTraffic.Read();
        var watch = Stopwatch.StartNew();
        action();
        var cost = new PhaseCost(watch.Elapsed, SwapTraffic.Read() - before);
        if (options.Progress)
        {
            stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"swapnbd-memtest: {name} done in {cost.Time.TotalSeconds:F1} s (swap {SwapSampler.Current() >> 20} MiB, swapped in/out {cost.Swap.InOutMiB} MiB)"));
        }

        return cost;
    }
}
