using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>
/// scripts/bench.sh --full --loss: the slab path and the nbdkit chain behind lossy lab links, one row per loss value
/// in one table, and the lab gone afterwards; bad --loss values refused by both benchmarks before anything starts.
/// </summary>
[Category(Tier.Interop)]
public sealed class LossBenchTests
{
    [TestCase("bench.sh", new[] { "--full", "--loss", "0,x" }, "bench.sh: --loss: 'x' is not a percentage")]
    [TestCase("bench.sh", new[] { "--full", "--loss", "0.5,0.5" }, "bench.sh: --loss: '0.5' is given twice")]
    [TestCase("bench.sh", new[] { "--loss", "1" }, "bench.sh: --loss measures the slab path against the nbdkit chain: use it with --full")]
    [TestCase("bench-swap.sh", new[] { "--loss", "101", "--no-build" }, "bench-swap: --loss: '101' is not a percentage")]
    [CancelAfter(30_000)]
    public async Task A_bad_loss_is_refused_before_anything_starts(string script, string[] args, string message, CancellationToken ct)
    {
        var before = await LabNamespacesAsync(ct);
        var (exit, output) = await Repo.RunAsync(Repo.Path("scripts", script), args, TimeSpan.FromSeconds(20), ct);
        Assert.That(exit, Is.EqualTo(2), output);
        Assert.That(output, Does.Contain(message));
        Assert.That((await LabNamespacesAsync(ct)).Except(before), Is.Empty, "no lab was made");
    }

    [Test, CancelAfter(300_000)]
    public async Task Bench_full_with_loss_measures_each_loss_in_one_table_and_removes_its_lab(CancellationToken ct)
    {
        var before = await LabNamespacesAsync(ct);
        var result = await ExternalTool.RunAsync("env", "coreutils", [
            @"BENCH_ROWS=^4K randread QD1\|Unix\|1$", "BENCH_SECONDS=1", "BENCH_RAMP=0",
            Repo.Path("scripts", "bench.sh"), "--full", "--loss", "0,1",
        ], TimeSpan.FromMinutes(4), ct);
        TestContext.Out.WriteLine(result.ToString());

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Stdout, Does.Contain("| Loss % | Workload | Transport | Conns | SwapNbd slab IOPS | nbdkit chain IOPS |"));
            Assert.That(result.Stdout, Does.Match(@"\| 0 \| 4K randread QD1 \| Unix \| 1 \| \d+ \| \d+ \|"), "the 0 % row, both servers measured");
            Assert.That(result.Stdout, Does.Match(@"\| 1 \| 4K randread QD1 \| Unix \| 1 \| \d+ \| \d+ \|"), "the 1 % row, both servers measured");
            Assert.That(result.Stdout, Does.Contain("| SwapNbd slab CPU µs/req | nbdkit chain CPU µs/req |"), "each side's CPU per request");
            Assert.That(result.Stdout, Does.Match(@"\| 1 \| 4K randread QD1 \| Unix \| 1 \|( [^|]+ \|){6} \d+ \| \d+ \|"),
                "the CPU columns measured for both sides (the server and donors in the lab, the chain's processes)");
            Assert.That(result.Stdout, Does.Not.Contain("| TCP |"), "the servers in the lab serve a Unix socket only");
            Assert.That(result.Stdout, Does.Match(@"After the 1 % pass: build under test: \d of 2 daemons up"));
            Assert.That(result.Stderr, Does.Contain("1 % loss each way on all 3 donor links"));
        });
        Assert.That((await LabNamespacesAsync(ct)).Except(before), Is.Empty, "the benchmark's lab is gone");
    }

    /// <summary>The namespaces of benchmark labs (scripts/lib/netlab-env.sh names them swl-b&lt;pid&gt;-…).</summary>
    private static async Task<IReadOnlyList<string>> LabNamespacesAsync(CancellationToken ct)
    {
        var list = await ExternalTool.RunAsync("ip", "iproute2", ["netns", "list"], TimeSpan.FromSeconds(10), ct);
        Assert.That(list.ExitCode, Is.Zero, list.ToString());
        return list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ')[0])
            .Where(ns => ns.StartsWith("swl-b", StringComparison.Ordinal))
            .ToList();
    }
}
