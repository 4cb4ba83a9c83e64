using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>
/// A real Prometheus scrapes out/swapnbd-server and two out/swapnbd-daemon processes (--metrics-listen on loopback)
/// every second while a client writes and reads the export; PromQL through its HTTP API must see the series move, and
/// promtool must find both outputs clean.
/// </summary>
[Category(Tier.Integration)]
public sealed class PrometheusScrapeTests
{
    private const int Chunk = MetricsWorkload.Chunk;

    [Test, CancelAfter(120_000)]
    public async Task Prometheus_sees_requests_bytes_daemon_slabs_and_reads_from_daemons_move(CancellationToken ct)
    {
        var timeout = TimeSpan.FromSeconds(30);
        await using var monitored = await MonitoredSystem.StartAsync(timeout, ct);
        var (system, prometheus) = (monitored.System, monitored.Prometheus);
        var writesBefore = await prometheus.ScalarAsync("sum(swapnbd_nbd_requests_total{command=\"write\"})", ct) ?? 0;

        // Round after round of writes and reads, until daemons answer reads.
        var (written, rounds) = await MetricsWorkload.RunAsync(system, prometheus, timeout, ct);

        await prometheus.WaitForAsync("sum(swapnbd_nbd_requests_total{command=\"write\"})", v => v >= writesBefore + written / Chunk,
            $"NBD writes counted ({rounds} rounds)", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_nbd_request_size_bytes_total{command=\"read\"})", v => v >= written, "NBD read bytes counted", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_nbd_read_duration_seconds_count)", v => v >= written / Chunk, "READ latency recorded", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_slabs_read_size_bytes_total{source=\"daemon\"})", v => v > 0, "reads served by daemons", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_daemon_up)", v => v == 2, "both daemons up in the server's view", timeout, ct);
        var placed = await prometheus.WaitForAsync("sum(swapnbd_daemon_slabs)", v => v > 0, "slabs on daemons in the server's view", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_donor_slabs{job=\"swapnbd-daemon\"})", v => v == placed, "the daemons hold the slabs the server placed", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_donor_request_size_bytes_total{opcode=\"write\"})", v => v > 0, "daemons count written bytes", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_donor_requests_total{opcode=\"read\"})", v => v > 0, "daemons count reads", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_donor_memory_committed_bytes)", v => v > 0, "daemons report committed memory", timeout, ct);
        await prometheus.WaitForAsync("min(swapnbd_donor_host_mem_available_bytes)", v => v > 0, "daemons report MemAvailable", timeout, ct);
        await prometheus.WaitForAsync("swapnbd_process_memory_resident_bytes{job=\"swapnbd-server\"}", v => v > 0, "the server reports its RSS", timeout, ct);
        await prometheus.WaitForAsync("sum(rate(swapnbd_nbd_requests_total[10s]))", v => v > 0, "a request rate while the workload ran", timeout, ct);

        // Both outputs as Prometheus' own checker sees them.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        foreach (var target in monitored.DaemonMetrics.Prepend(monitored.ServerMetrics))
        {
            var text = await http.GetStringAsync($"http://{target}/metrics", ct);
            var (exit, output) = await Tools.PromtoolCheckAsync(text, ct);
            Assert.That(exit, Is.Zero, $"promtool check metrics on {target}: {output}");
            Assert.That(output.Trim(), Is.Empty, $"promtool check metrics on {target} has remarks");
        }

        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{rounds} rounds of 16 MiB; {placed} slabs on daemons"));
    }
}
