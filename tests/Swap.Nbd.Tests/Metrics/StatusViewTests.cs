using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;
using Swap.Server.Status;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>`swapnbd-server status` over the status file of an in-process slab cluster that a client has written to and read.</summary>
[Category(Tier.Integration)]
public sealed class StatusViewTests
{
    [Test, CancelAfter(60_000)]
    public async Task The_table_json_and_watch_show_the_running_server(CancellationToken ct)
    {
        var directory = Directory.CreateTempSubdirectory("swapnbd-statusview-").FullName;
        try
        {
            var path = Path.Combine(directory, "status.json");
            await using var cluster = await SlabCluster.StartAsync(daemons: 2, size: 16L << 20, slabSize: 1L << 20, statusFile: path);
            await using (var client = await NbdClientConnection.ConnectAsync(cluster.Uri, ct: ct))
            {
                var data = new byte[256 << 10];
                Random.Shared.NextBytes(data);
                for (var round = 0; round < 100 && cluster.Device.GetStats().PagesRemote < data.Length / 4096; round++)
                {
                    await client.WriteAsync(0, data, ct: ct);
                    await Task.Delay(20, ct);
                }

                await client.ReadAsync(0, data, ct);
            }

            string table = "";
            for (var i = 0; i < 40 && !table.Contains("% remote", StringComparison.Ordinal); i++)
            {
                await Task.Delay(250, ct);
                var (exit, output, _) = await RunAsync(["--status-file", path], ct);
                Assert.That(exit, Is.Zero);
                table = output;
            }

            TestContext.Out.WriteLine(table);
            Assert.That(table, Does.Contain("serving"));
            foreach (var daemon in cluster.Daemons)
            {
                Assert.That(table, Does.Match($@"{daemon.Name}\s+up\s+\d+"), "a row per daemon, up");
            }

            Assert.That(table, Does.Match(@"reads: .* from daemons, .* from the backup disk \([0-9.]+ % remote\)"));
            Assert.That(table, Does.Contain("backup disk "));

            var (jsonExit, json, _) = await RunAsync(["--status-file", path, "--json"], ct);
            Assert.That(jsonExit, Is.Zero);
            using (var parsed = System.Text.Json.JsonDocument.Parse(json))
            {
                Assert.That(parsed.RootElement.GetProperty("slabs").GetProperty("readBytesFromDaemons").GetInt64(), Is.GreaterThan(0));
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            stop.CancelAfter(TimeSpan.FromSeconds(1.5));
            var (watchExit, frames, _) = await RunAsync(["--status-file", path, "--watch", "0.2"], stop.Token);
            Assert.That(watchExit, Is.Zero);
            Assert.That(frames.Split("\u001b[H\u001b[2J").Length - 1, Is.GreaterThanOrEqualTo(2), "redrawn in place");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test, CancelAfter(10_000)]
    public async Task A_missing_file_or_a_bad_argument_says_what_to_do(CancellationToken ct)
    {
        var (missing, _, why) = await RunAsync(["--status-file", "/nonexistent/status.json"], ct);
        Assert.That(missing, Is.EqualTo(1));
        Assert.That(why, Does.Contain("cannot read /nonexistent/status.json").And.Contain("--status-file"));
        var (bad, _, usage) = await RunAsync(["--bogus"], ct);
        Assert.That(bad, Is.EqualTo(2));
        Assert.That(usage, Does.Contain("'--bogus' is not known").And.Contain("usage: swapnbd-server status"));
    }

    private static async Task<(int Exit, string Output, string Error)> RunAsync(string[] args, CancellationToken ct)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await StatusView.RunAsync(args, output, error, ct);
        return (exit, output.ToString(), error.ToString());
    }
}
