using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>
/// A slab-mode <see cref="SwapSystem"/> (64 MiB export, 4 MiB slabs, two daemon processes) whose server and daemons
/// serve metrics on loopback, and a real Prometheus scraping them every second as jobs swapnbd-server and
/// swapnbd-daemon; disposal stops all of it.
/// </summary>
internal sealed class MonitoredSystem : IAsyncDisposable
{
    public const long Size = 64L << 20;
    public const long SlabSize = 4L << 20;

    private MonitoredSystem(SwapSystem system, PrometheusServer prometheus, string serverMetrics, IReadOnlyList<string> daemonMetrics)
    {
        System = system;
        Prometheus = prometheus;
        ServerMetrics = serverMetrics;
        DaemonMetrics = daemonMetrics;
    }

    public SwapSystem System { get; }

    public PrometheusServer Prometheus { get; }

    /// <summary>The server's --metrics-listen HOST:PORT.</summary>
    public string ServerMetrics { get; }

    /// <summary>Each daemon's --metrics-listen HOST:PORT.</summary>
    public IReadOnlyList<string> DaemonMetrics { get; }

    /// <summary>Starts it all and waits until Prometheus has scraped every target.</summary>
    public static async Task<MonitoredSystem> StartAsync(TimeSpan timeout, CancellationToken ct)
    {
        var serverMetrics = $"127.0.0.1:{Loopback.FreePort()}";
        var daemonMetrics = new[] { $"127.0.0.1:{Loopback.FreePort()}", $"127.0.0.1:{Loopback.FreePort()}" };
        var system = await SwapSystem.StartAsync(Size, SlabSize, daemons: 2, ["--metrics-listen", serverMetrics],
            daemonArgs: k => ["--metrics-listen", daemonMetrics[k]], ct: ct);
        PrometheusServer? prometheus = null;
        try
        {
            prometheus = await PrometheusServer.StartAsync(new Dictionary<string, IReadOnlyList<string>>
            {
                ["swapnbd-server"] = [serverMetrics],
                ["swapnbd-daemon"] = daemonMetrics,
            }, ct);
            await prometheus.WaitForAsync("sum(up)", v => v == 3, "every target scraped", timeout, ct);
            return new MonitoredSystem(system, prometheus, serverMetrics, daemonMetrics);
        }
        catch
        {
            if (prometheus is not null)
            {
                await prometheus.DisposeAsync();
            }

            await system.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Prometheus.DisposeAsync();
        await System.DisposeAsync();
    }
}
