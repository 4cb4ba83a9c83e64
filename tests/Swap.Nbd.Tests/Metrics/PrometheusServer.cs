using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>
/// A real Prometheus (Debian's prometheus package) on loopback, scraping the given targets every second from a
/// configuration this test writes, with its own storage in a temp directory that disposal removes. Queries go through
/// its HTTP API.
/// </summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    private readonly RunningExe _process;
    private readonly HttpClient _http;
    private readonly string _directory;

    private PrometheusServer(RunningExe process, HttpClient http, string directory)
    {
        _process = process;
        _http = http;
        _directory = directory;
    }

    public string Log => _process.Log;

    /// <param name="jobs">Job name → HOST:PORT targets serving /metrics.</param>
    public static async Task<PrometheusServer> StartAsync(IReadOnlyDictionary<string, IReadOnlyList<string>> jobs, CancellationToken ct)
    {
        var program = Tools.Require("prometheus", "prometheus");
        var directory = Directory.CreateTempSubdirectory("swapnbd-prometheus-").FullName;
        var config = Path.Combine(directory, "prometheus.yml");
        var scrapes = string.Concat(jobs.Select(j =>
            $"  - job_name: {j.Key}\n    static_configs:\n      - targets: [{string.Join(", ", j.Value.Select(t => $"'{t}'"))}]\n"));
        await File.WriteAllTextAsync(config, $"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrapes}", ct);
        var port = Loopback.FreePort();
        var process = RunningExe.StartProgram(program,
            [$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(directory, "data")}", $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        var server = new PrometheusServer(process, http, directory);
        try
        {
            for (var i = 0; ; i++)
            {
                Assert.That(process.HasExited, Is.False, $"prometheus exited:\n{process.Log}");
                try
                {
                    using var ready = await http.GetAsync("-/ready", ct);
                    if (ready.IsSuccessStatusCode)
                    {
                        return server;
                    }
                }
                catch (HttpRequestException) when (i < 300)
                {
                }

                Assert.That(i, Is.LessThan(300), $"prometheus not ready after 30 s:\n{process.Log}");
                await Task.Delay(100, ct);
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>The value of an instant PromQL query that yields one number, or null when it yields nothing.</summary>
    public async Task<double?> ScalarAsync(string query, CancellationToken ct)
    {
        var result = await VectorAsync(query, ct);
        if (result.GetArrayLength() == 0)
        {
            return null;
        }

        Assert.That(result.GetArrayLength(), Is.EqualTo(1), $"{query} gives one series: {result}");
        return double.Parse(result[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The series an instant PromQL query yields (the API's data.result: objects of metric labels and [time, "value"]);
    /// fails the test when Prometheus refuses the query (a parse error, an unknown function).
    /// </summary>
    public async Task<JsonElement> VectorAsync(string query, CancellationToken ct)
    {
        using var response = await _http.GetAsync("api/v1/query?query=" + Uri.EscapeDataString(query), ct);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        Assert.That(body.GetProperty("status").GetString(), Is.EqualTo("success"), $"{query}: {body}");
        return body.GetProperty("data").GetProperty("result");
    }

    /// <summary>Waits until <paramref name="query"/> yields a value that satisfies <paramref name="condition"/>.</summary>
    public async Task<double> WaitForAsync(string query, Func<double, bool> condition, string what, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        double? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await ScalarAsync(query, ct);
            if (last is { } value && condition(value))
            {
                return value;
            }

            await Task.Delay(250, ct);
        }

        Assert.Fail($"{what}: `{query}` is {last?.ToString(CultureInfo.InvariantCulture) ?? "empty"} after {timeout.TotalSeconds} s\n{_process.Log}");
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _process.Dispose();
        await Task.Yield();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Prometheus may still be closing its files after the SIGKILL; the temp dir is cleaned at the next boot.
        }
    }
}
