using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.HostSwap;

/// <summary>
/// docs/operations.md's docker recipe, run: the whole system (swapnbd-server in slab mode over two daemon processes
/// and a backup file) attached as this host's swap with scripts/swap-attach.sh (nbdfuse + loop device: no nbd module
/// here), a dockerd of the test's own, an image imported from the NativeAOT swapnbd-memtest and the libraries ldd
/// lists (no registry is reachable), and `docker run --memory 256m --memory-swap 1536m` of a 1 GiB working set that
/// verifies every page. The container's pages must go through the device, and memtest must find the container's
/// own memory limit. Root only; about 800 MiB go through the server.
/// </summary>
[Category(Tier.Swap)]
public sealed partial class ContainerSwapTests
{
    private const long WorkingSet = 1L << 30;
    private const long MemoryLimit = 256L << 20;
    private const long MemoryAndSwap = 1536L << 20;
    private const long ExportSize = 2L << 30;
    private const long SlabSize = 64L << 20;
    private const int Touches = 4096; // random single-page faults after the fill; the verify pass reads every page again
    private const int Priority = 32767; // the highest: no other swap area takes the container's pages
    private const string Image = "swapnbd-memtest:test";

    [Test, CancelAfter(480_000)]
    public async Task Docker_run_with_256m_of_memory_swaps_a_1_GiB_working_set_through_the_device_and_verifies_every_page(CancellationToken ct)
    {
        var name = "ctr-" + Guid.NewGuid().ToString("N")[..8];
        var kernelLog = await KernelLog.MarkAsync(ct);
        await using var system = await SwapSystem.StartAsync(ExportSize, SlabSize, daemons: 2, ct: ct);
        await using var swap = await SwapAttachment.AttachAsync(name, ["--socket", system.Socket, "--priority", Priority.ToString(CultureInfo.InvariantCulture)], ct);
        Assert.That(SwapAttachment.SwapsEntries().Where(e => e.Key != swap.Device && e.Value.Priority >= Priority), Is.Empty, "no other swap area competes for the pages");

        var docker = await DockerDaemon.StartAsync(ct);
        List<string> dockerLeftovers;
        ToolResult run;
        TimeSpan elapsed;
        long peakUsed = 0;
        try
        {
            await docker.ImportAsync(OutBinary.Path("swapnbd-memtest"), Image, ct);
            var watch = Stopwatch.StartNew();
            var container = docker.RunAsync(
            [
                "run", "--rm", "--name", name, "--network", "none", "--memory", "256m", "--memory-swap", "1536m", "--cgroup-parent", docker.CgroupParent,
                Image, "/usr/local/bin/swapnbd-memtest", "--size", WorkingSet.ToString(CultureInfo.InvariantCulture),
                "--touches", Touches.ToString(CultureInfo.InvariantCulture), "--seed", "42", "--progress",
            ], TimeSpan.FromMinutes(7), ct);
            while (!container.IsCompleted)
            {
                peakUsed = Math.Max(peakUsed, swap.SwapsEntry()?.Used ?? 0);
                await Task.WhenAny(container, Task.Delay(250, ct));
            }

            run = await container;
            elapsed = watch.Elapsed;
        }
        finally
        {
            await docker.DisposeAsync();
            dockerLeftovers = [.. docker.Leftovers()];
        }

        using var status = await system.ReadStatusAsync(ct);
        var report = $"{run}\n{elapsed.TotalSeconds:F1} s; peak swap used on {swap.Device}: {peakUsed >> 20} MiB\nstatus: {status?.RootElement}";
        TestContext.Out.WriteLine(report);

        var detach = await swap.DetachAsync(ct);
        var kernel = await kernelLog.SinceMarkAsync(ct);
        var loop = Path.GetFileName(swap.Device);
        var summary = Summary().Match(run.Stdout);
        Assert.Multiple(() =>
        {
            Assert.That(run.ExitCode, Is.Zero, "docker run: swapnbd-memtest found bad pages or failed\n" + report);
            Assert.That(run.Stdout, Does.Contain($"PASS pages={WorkingSet / 4096} ").And.Contain(" mismatches=0 "), "every page verified");
            Assert.That(summary.Success, Is.True, "the summary line names the container's cgroup and its limit:\n" + run.Stdout);
            Assert.That(summary.Groups["limit"].Value, Is.EqualTo("256MiB"), "memtest found the container's memory limit (not limit=none)");
            Assert.That(long.Parse(summary.Groups["swap"].Value, CultureInfo.InvariantCulture), Is.GreaterThanOrEqualTo((WorkingSet - MemoryLimit) / 2 >> 20),
                "the container's own pages were swapped (memtest's swap_peak)");
            Assert.That(peakUsed, Is.GreaterThanOrEqualTo((WorkingSet - MemoryLimit) / 2), "the container's pages went to our swap device");
            Assert.That(kernel.Where(l => l.Contains("swap-device", StringComparison.Ordinal) || (l.Contains("I/O error", StringComparison.Ordinal) && l.Contains(loop, StringComparison.Ordinal))),
                Is.Empty, "the kernel saw no swap or I/O error on the device");
            Assert.That(dockerLeftovers, Is.Empty, "dockerd, its containerd, mounts and cgroups are gone");
            Assert.That(Directory.Exists(docker.Directory), Is.False, "dockerd's directory is gone");
            Assert.That(detach.ExitCode, Is.Zero, detach.ToString());
            Assert.That(swap.Leftovers(), Is.Empty, "swap-detach.sh left nothing behind");
        });
    }

    // swapnbd-memtest's summary: "... swap_peak=790MiB max_page_ms=2.1 cgroup=/x limit=256MiB".
    [GeneratedRegex(@"swap_peak=(?<swap>\d+)MiB .* cgroup=\S+ limit=(?<limit>\S+)")]
    private static partial Regex Summary();
}
