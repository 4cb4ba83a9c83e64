using NUnit.Framework;
using Swap.Donor;
using Swap.Donor.Hosting;
using Swap.Nbd.Client;
using Swap.Nbd.Server;
using Swap.Nbd.Tests.Support;
using Swap.Server;
using Swap.Server.Metrics;
using Swap.Slabs.Mapping;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>
/// The text the exporters serve, without Prometheus: an in-process slab cluster (server, device, one daemon) with
/// both exporters on loopback; every documented series is there after some I/O, and bad endpoints are refused by key.
/// </summary>
[Category(Tier.Integration)]
public sealed class MetricsTextTests
{
    /// <summary>Every series the server serves (README, "Metrics").</summary>
    private static readonly string[] ServerSeries =
    [
        "swapnbd_nbd_requests_total{command=\"write\"}", "swapnbd_nbd_requests_total{command=\"read\"}",
        "swapnbd_nbd_request_size_bytes_total{command=\"write\"}", "swapnbd_nbd_requests_in_flight", "swapnbd_nbd_connections",
        "swapnbd_nbd_read_duration_seconds_bucket", "swapnbd_nbd_write_duration_seconds_bucket",
        "swapnbd_slabs_read_size_bytes_total{source=\"daemon\"}", "swapnbd_slabs_read_size_bytes_total{source=\"disk\"}",
        "swapnbd_slabs{state=\"mapped\"}", "swapnbd_slabs_placement_queue", "swapnbd_slabs_placements_total", "swapnbd_slabs_unmaps_total",
        "swapnbd_pages_bytes{where=\"daemons\"}", "swapnbd_sealing_open_failures_total", "swapnbd_hedge_reads_total{outcome=\"started\"}", "swapnbd_prefetch_pages_total{outcome=\"issued\"}",
        "swapnbd_daemon_up{daemon=", "swapnbd_daemon_draining{daemon=", "swapnbd_daemon_slabs{daemon=", "swapnbd_daemon_pages_bytes{daemon=", "swapnbd_daemon_read_median_seconds{daemon=",
        "swapnbd_daemon_hedge_bound_seconds{daemon=", "swapnbd_daemon_failures_total{daemon=", "swapnbd_daemon_reconnects_total{daemon=",
        "swapnbd_daemon_evictions_total{daemon=", "swapnbd_backup_read_duration_seconds_bucket", "swapnbd_backup_write_duration_seconds_bucket",
        "swapnbd_process_memory_resident_bytes", "swapnbd_process_memory_locked_bytes",
    ];

    /// <summary>Every series the daemon serves.</summary>
    private static readonly string[] DaemonSeries =
    [
        "swapnbd_donor_memory_lent_bytes", "swapnbd_donor_memory_committed_bytes", "swapnbd_donor_host_mem_available_bytes",
        "swapnbd_donor_slabs{client=", "swapnbd_donor_clients", "swapnbd_donor_evictions_total", "swapnbd_donor_connections",
        "swapnbd_donor_connections_handshaking", "swapnbd_donor_requests_total{opcode=\"write\"}", "swapnbd_donor_request_size_bytes_total{opcode=\"write\"}",
        "swapnbd_donor_handshakes_refused_total", "swapnbd_process_memory_resident_bytes",
    ];

    [Test, CancelAfter(60_000)]
    public async Task Both_exporters_serve_every_documented_series(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(daemons: 1, size: 16L << 20, slabSize: 1L << 20);
        using var serverExporter = new MetricsExporter($"127.0.0.1:{Loopback.FreePort()}", NbdMetrics.MeterName, SlabMetrics.MeterName);
        using var daemonExporter = new DaemonMetricsExporter($"127.0.0.1:{Loopback.FreePort()}");
        cluster.Daemons[0].Daemon!.Metrics.Refused(); // a refused handshake, so the counter has a point to show

        await using (var client = await NbdClientConnection.ConnectAsync(cluster.Uri, ct: ct))
        {
            var page = new byte[64 << 10];
            Random.Shared.NextBytes(page);
            for (var round = 0; round < 50 && cluster.Device.GetStats().PagesRemote == 0; round++)
            {
                await client.WriteAsync(0, page, ct: ct);
                await Task.Delay(20, ct);
            }

            await client.ReadAsync(0, page, ct);
            await client.ReadAsync(4L << 20, page, ct); // never written: from the disk
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var server = await http.GetStringAsync(serverExporter.Url, ct);
        var daemon = await http.GetStringAsync(daemonExporter.Url, ct);
        Assert.Multiple(() =>
        {
            foreach (var series in ServerSeries)
            {
                Assert.That(server, Does.Contain("\n" + series), "server: " + series);
            }

            foreach (var series in DaemonSeries)
            {
                Assert.That(daemon, Does.Contain("\n" + series), "daemon: " + series);
            }

            Assert.That(server, Does.Not.Contain("swapnbd_donor_"), "the server's endpoint serves the server only");
            Assert.That(daemon, Does.Not.Contain("swapnbd_nbd_"), "the daemon's endpoint serves the daemon only");
        });
    }

    [TestCase("127.0.0.1:0")]
    [TestCase("127.0.0.1")]
    [TestCase("nowhere:9464")]
    public void A_bad_metrics_endpoint_is_refused_naming_the_key(string listen)
    {
        var server = new ServerOptions { MetricsListen = listen }.Validate();
        var daemon = new DonorOptions { MetricsListen = listen, InsecureNoAuth = true }.Validate();
        Assert.That(server, Has.One.StartsWith("MetricsListen: '" + listen + "' is not HOST:PORT"));
        Assert.That(daemon, Has.One.StartsWith("MetricsListen: '" + listen + "' is not HOST:PORT"));
    }
}
