using OpenTelemetry;
using OpenTelemetry.Metrics;
using Swap.Common.Configuration;
using Swap.Common.Hosting;

namespace Swap.Donor.Hosting;

/// <summary>
/// Serves the daemon's meter (<see cref="DonorMetrics"/>) in Prometheus' text format on GET http://HOST:PORT/metrics, through
/// OpenTelemetry's Prometheus exporter on an HttpListener (AOT-clean; collection runs on the scrape, the request path
/// only updates counters and histograms). Also the process's RSS and locked memory. Off unless --metrics-listen.
/// </summary>
public sealed class DaemonMetricsExporter : IDisposable
{
    private readonly MeterProvider _provider;
    private readonly ProcessMetrics _process = new();

    /// <exception cref="ArgumentException"><paramref name="listen"/> is no HOST:PORT with a port of its own.</exception>
    public DaemonMetricsExporter(string listen)
    {
        if (!MetricsEndpoint.TryParse(listen, out var endpoint))
        {
            throw new ArgumentException(MetricsEndpoint.Check("MetricsListen", listen), nameof(listen));
        }

        Url = $"http://{MetricsEndpoint.ListenerHost(endpoint).Replace("+", endpoint.Address.ToString(), StringComparison.Ordinal)}:{endpoint.Port}/metrics";
        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(DonorMetrics.MeterName, ProcessMetrics.MeterName)
            .AddPrometheusHttpListener(o =>
            {
                o.Host = MetricsEndpoint.ListenerHost(endpoint);
                o.Port = endpoint.Port;
                o.ScrapeEndpointPath = "/metrics";
                o.ScopeInfoEnabled = false;
                o.TargetInfoEnabled = false;
                o.ScrapeResponseCacheDurationMilliseconds = 0;
            })
            .Build();
    }

    /// <summary>Where the text format is served.</summary>
    public string Url { get; }

    public void Dispose()
    {
        _provider.Dispose();
        _process.Dispose();
    }
}
