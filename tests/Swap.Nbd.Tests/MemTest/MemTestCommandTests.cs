using NUnit.Framework;
using Swap.MemTest;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.MemTest;

[Category(Tier.Integration)]
public sealed class MemTestCommandTests
{
    [Test]
    public void Options_parse_sizes_counts_and_report_every_error()
    {
        var errors = new List<string>();
        var options = MemTestOptions.Parse(["--size", "64MiB", "--touches", "1000", "--seed", "42", "--passes", "3", "--progress"], errors);
        Assert.That(errors, Is.Empty);
        Assert.That((options.Size, options.TouchesPerPass, options.Seed, options.Passes, options.Progress), Is.EqualTo((64L << 20, 1000L, 42UL, 3, true)));
        Assert.That(new MemTestOptions { Size = 8L << 20 }.TouchesPerPass, Is.EqualTo(2048), "one touch per page by default");

        MemTestOptions.Parse(["--size", "4097", "--touches", "-1", "--seed", "x", "--passes", "0", "--what", "--size"], errors);
        Assert.That(errors, Has.Count.EqualTo(6));
        Assert.That(errors, Has.Some.StartsWith("--size: '4097'").And.Some.StartsWith("--touches").And.Some.StartsWith("--seed")
            .And.Some.StartsWith("--passes").And.Some.EqualTo("unknown argument '--what'").And.Some.EqualTo("--size needs a value"));
    }

    [Test, CancelAfter(60_000)]
    public async Task The_executable_prints_one_summary_line_and_exits_0(CancellationToken ct)
    {
        var (exit, output) = await Repo.RunAsync(Repo.Path("out", "swapnbd-memtest"), ["--size", "16MiB", "--touches", "20000", "--seed", "5", "--passes", "2"], TimeSpan.FromSeconds(50), ct);
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Match(@"^swapnbd-memtest: PASS pages=4096 size=16MiB touches=40000 mismatches=0 seconds=[0-9.]+ fill=[0-9.]+ touch=[0-9.]+ verify=[0-9.]+ swap_peak=\d+MiB max_page_ms=[0-9.]+ swap_mib=fill:\d+/\d+,touch:\d+/\d+,verify:\d+/\d+ swap_ra_mib=fill:\d+/\d+,touch:\d+/\d+,verify:\d+/\d+( |$)"));
    }

    [Test]
    public void Swap_traffic_is_read_from_vmstat_and_counted_per_phase()
    {
        const string VmStat = "nr_free_pages 12345\npswpin 1000\npswpout 2560\nswap_ra 300\nswap_ra_hit 256\npgfault 99\nbogus\nswap_ra_x 7\n";
        var before = SwapTraffic.Parse(VmStat);
        Assert.That(before, Is.EqualTo(new SwapTraffic(1000, 2560, 300, 256)));
        var after = SwapTraffic.Parse("pswpin 1256\npswpout 4608\nswap_ra 812\nswap_ra_hit 768\n");
        var phase = after - before;
        Assert.That(phase, Is.EqualTo(new SwapTraffic(256, 2048, 512, 512)));
        Assert.That((phase.InOutMiB, phase.ReadAheadMiB), Is.EqualTo(("1/8", "2/2")));
        Assert.That((phase + phase).InOutMiB, Is.EqualTo("2/16"));
        Assert.That(SwapTraffic.Parse("pswpin\npswpout x\n"), Is.EqualTo(default(SwapTraffic)), "a kernel without the counters reads as zeros");
        Assert.That(SwapTraffic.Read("/nonexistent/vmstat"), Is.EqualTo(default(SwapTraffic)));
    }

    [Test, CancelAfter(60_000)]
    public async Task The_executable_refuses_bad_arguments_with_exit_2(CancellationToken ct)
    {
        var (exit, output) = await Repo.RunAsync(Repo.Path("out", "swapnbd-memtest"), ["--size", "1x"], TimeSpan.FromSeconds(50), ct);
        Assert.That(exit, Is.EqualTo(MemTestCommand.ExitUsage), output);
        Assert.That(output, Does.Contain("--size: '1x'"));
    }
}
