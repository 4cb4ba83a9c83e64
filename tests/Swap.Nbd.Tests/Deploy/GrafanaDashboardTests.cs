using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Swap.Nbd.Tests.Metrics;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Deploy;

/// <summary>
/// deploy/grafana/swapnbd-dashboard.json against the real thing: a real Prometheus scrapes out/swapnbd-server and two
/// out/swapnbd-daemon processes under a workload, and every query of every panel must parse and return at least one
/// series (Grafana's $__rate_interval given a value, as Grafana does). No Grafana runs here; the file's shape is
/// checked as far as an import needs it (unique panel ids, the datasource variable, panels inside the 24-column grid).
/// </summary>
[Category(Tier.Integration)]
public sealed partial class GrafanaDashboardTests
{
    // What Grafana puts for $__rate_interval with a 1 s scrape interval and a short dashboard range is far less; a
    // minute keeps the whole workload in every window.
    private const string RateInterval = "1m";

    // Panels whose first query must show the workload as a number above 0, not just a series.
    private static readonly string[] MustMove =
        ["NBD requests/s", "NBD throughput", "Swap-in and swap-out latency", "Reads by source", "Pages", "Pages per donor", "Lent and committed memory",
         "Donor requests/s", "Donor page bytes", "Resident and locked memory", "Daemons up"];

    private static string DashboardPath => Repo.Path("deploy", "grafana", "swapnbd-dashboard.json");

    [Test]
    public void The_dashboard_is_shaped_for_import_and_names_only_documented_metrics()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(DashboardPath));
        var root = dashboard.RootElement;
        Assert.That(root.GetProperty("uid").GetString(), Is.EqualTo("swapnbd"));
        var variables = root.GetProperty("templating").GetProperty("list").EnumerateArray().ToList();
        Assert.That(variables.Select(v => (v.GetProperty("name").GetString(), v.GetProperty("type").GetString())), Does.Contain(("datasource", "datasource")));

        var panels = root.GetProperty("panels").EnumerateArray().ToList();
        Assert.That(panels.Select(p => p.GetProperty("id").GetInt32()), Is.Unique);
        foreach (var panel in panels)
        {
            var title = panel.GetProperty("title").GetString();
            var grid = panel.GetProperty("gridPos");
            Assert.That(grid.GetProperty("x").GetInt32() + grid.GetProperty("w").GetInt32(), Is.LessThanOrEqualTo(24), title);
            if (panel.GetProperty("type").GetString() == "row")
            {
                continue;
            }

            Assert.That(panel.GetProperty("datasource").GetProperty("uid").GetString(), Is.EqualTo("${datasource}"), title);
            var targets = panel.GetProperty("targets").EnumerateArray().ToList();
            Assert.That(targets, Is.Not.Empty, title);
            Assert.That(targets.Select(t => t.GetProperty("refId").GetString()), Is.Unique, title);
        }

        // README's metric tables are the reference: a dashboard query over a name not there is a typo or a stale name.
        var readme = File.ReadAllText(Repo.Path("README.md"));
        var names = Queries().SelectMany(q => MetricName().Matches(q.Expr).Select(m => m.Value)).Distinct().ToList();
        Assert.That(names, Has.Count.GreaterThan(20));
        foreach (var name in names)
        {
            var documented = HistogramSuffix().Replace(name, "");
            Assert.That(readme, Does.Contain($"`{documented}`"), $"{name} is in README's metric tables");
        }
    }

    [Test, CancelAfter(180_000)]
    public async Task Every_query_returns_data_from_a_real_Prometheus_after_a_workload(CancellationToken ct)
    {
        var timeout = TimeSpan.FromSeconds(30);
        await using var monitored = await MonitoredSystem.StartAsync(timeout, ct);
        var (written, rounds) = await MetricsWorkload.RunAsync(monitored.System, monitored.Prometheus, timeout, ct);
        var prometheus = monitored.Prometheus;

        // Until the last round's requests are scraped and the daemons' pages are counted.
        await prometheus.WaitForAsync("sum(swapnbd_nbd_read_duration_seconds_count)", v => v >= written / MetricsWorkload.Chunk, "every READ scraped", timeout, ct);
        await prometheus.WaitForAsync("sum(swapnbd_daemon_pages_bytes)", v => v > 0, "pages on daemons", timeout, ct);

        var report = new List<string>();
        var empty = new List<string>();
        var still = new List<string>();
        foreach (var (panel, legend, expr) in Queries())
        {
            var query = expr.Replace("$__rate_interval", RateInterval, StringComparison.Ordinal);
            Assert.That(query, Does.Not.Contain("$"), $"{panel}: a Grafana variable the test does not know");
            var result = await prometheus.VectorAsync(query, ct);
            var values = result.EnumerateArray().Select(s => double.Parse(s.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)).ToList();
            report.Add($"{panel} / {legend}: {values.Count} series: {string.Join(", ", values.Take(4).Select(v => v.ToString("G4", CultureInfo.InvariantCulture)))}");
            if (values.Count == 0)
            {
                empty.Add($"{panel} / {legend}: {query}");
            }
            else if (MustMove.Contains(panel) && legend == FirstLegend(panel) && !values.Any(v => v > 0))
            {
                still.Add($"{panel} / {legend}: {query} = {string.Join(", ", values)}");
            }
        }

        TestContext.Out.WriteLine($"{rounds} rounds of 16 MiB\n" + string.Join('\n', report));
        Assert.That(empty, Is.Empty, "queries that return no series");
        Assert.That(still, Is.Empty, "queries that should show the workload");
    }

    /// <summary>Every query of the dashboard: its panel's title, its legend, its PromQL.</summary>
    private static List<(string Panel, string Legend, string Expr)> Queries()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(DashboardPath));
        var queries = new List<(string, string, string)>();
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
        {
            if (!panel.TryGetProperty("targets", out var targets))
            {
                continue;
            }

            foreach (var target in targets.EnumerateArray())
            {
                queries.Add((panel.GetProperty("title").GetString()!, target.GetProperty("legendFormat").GetString()!, target.GetProperty("expr").GetString()!));
            }
        }

        return queries;
    }

    private static string FirstLegend(string panel) => Queries().First(q => q.Panel == panel).Legend;

    [GeneratedRegex(@"swapnbd_[a-z_]+")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"_(bucket|count|sum)$")]
    private static partial Regex HistogramSuffix();
}
