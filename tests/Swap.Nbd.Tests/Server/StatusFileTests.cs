using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Server;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>--status-file: the JSON an operator (and the demo) reads to see where the pages went.</summary>
[Category(Tier.Integration)]
public sealed class StatusFileTests
{
    private string _directory = "";

    [SetUp]
    public void SetUp() => _directory = Directory.CreateTempSubdirectory("swapnbd-status-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_directory, recursive: true);

    private string StatusPath => Path.Combine(_directory, "status.json");

    [Test, CancelAfter(60_000)]
    public async Task Slab_mode_names_every_daemon_its_slabs_and_bytes_and_the_backup_disk(CancellationToken ct)
    {
        const int size = 8 << 20;
        await using var cluster = await SlabCluster.StartAsync(3, size, statusFile: StatusPath);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 1, new NbdClientOptions(), ct);
        var data = new byte[1 << 20];
        new Random(5).NextBytes(data);
        for (var offset = 0; offset < size; offset += data.Length)
        {
            await pool.WriteAsync(offset, data, fua: false, ct);
        }

        await cluster.WaitSettledAsync(ct);
        using var status = await WaitForStatusAsync(s => s.GetProperty("slabs").GetProperty("bytesRemote").GetInt64() == size, "every page on a daemon", ct);
        var root = status.RootElement;
        var slabs = root.GetProperty("slabs");
        var daemons = slabs.GetProperty("daemons").EnumerateArray().ToList();
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("state").GetString(), Is.EqualTo("serving"));
            Assert.That(root.GetProperty("backend").GetString(), Is.EqualTo("slabs"));
            Assert.That(root.GetProperty("pid").GetInt32(), Is.EqualTo(Environment.ProcessId));
            Assert.That(root.GetProperty("size").GetInt64(), Is.EqualTo(size));
            Assert.That(root.GetProperty("connections").GetInt32(), Is.EqualTo(1));
            Assert.That(root.TryGetProperty("memoryBytes", out _), Is.False, "slab mode has no in-process memory figure");
            Assert.That(slabs.GetProperty("slabSize").GetInt64(), Is.EqualTo(1 << 20));
            Assert.That(slabs.GetProperty("slabsTotal").GetInt32(), Is.EqualTo(8));
            Assert.That(slabs.GetProperty("bytesWritten").GetInt64(), Is.EqualTo(size));
            Assert.That(slabs.GetProperty("bytesDiskOnly").GetInt64(), Is.Zero);
            Assert.That(slabs.GetProperty("backupDisk").GetProperty("bytes").GetInt64(), Is.EqualTo(size), "every page is mirrored on the disk");
            Assert.That(daemons.Select(d => d.GetProperty("name").GetString()), Is.EqualTo(cluster.Daemons.Select(d => d.Name)));
            Assert.That(daemons.All(d => d.GetProperty("up").GetBoolean()), Is.True);
            Assert.That(daemons.Sum(d => d.GetProperty("slabs").GetInt32()), Is.EqualTo(8));
            Assert.That(daemons.Sum(d => d.GetProperty("bytes").GetInt64()), Is.EqualTo(size));
            Assert.That(daemons.Count(d => d.GetProperty("bytes").GetInt64() > 0), Is.GreaterThan(1), "spread over the daemons");
        });

        // The file follows the device: a daemon that goes away is shown down at once.
        await cluster.Daemons[0].KillAsync();
        using var after = await WaitForStatusAsync(s => !s.GetProperty("slabs").GetProperty("daemons")[0].GetProperty("up").GetBoolean(), "daemon 0 down", ct);
        Assert.That(after.RootElement.GetProperty("slabs").GetProperty("daemons")[0].GetProperty("bytes").GetInt64(), Is.Zero);

        await cluster.StopServerAsync();
        using var stopped = JsonDocument.Parse(await File.ReadAllTextAsync(StatusPath, ct));
        Assert.That(stopped.RootElement.GetProperty("state").GetString(), Is.EqualTo("stopped"));
        Assert.That(Directory.GetFiles(_directory), Is.EqualTo(new[] { StatusPath }), "no temp file left behind");
    }

    [Test, CancelAfter(30_000)]
    public async Task The_file_is_rewritten_every_second_of_the_servers_clock(CancellationToken ct)
    {
        var start = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(start);
        var options = new ServerOptions { Nbd = { Listen = "127.0.0.1:0" }, Size = 1 << 20, StatusFile = StatusPath, LockMemory = false };
        await using var host = new SwapServerHost(options, NullLoggerFactory.Instance, time);
        host.Start();
        var device = host.Device;

        using (var first = JsonDocument.Parse(await File.ReadAllTextAsync(StatusPath, ct)))
        {
            Assert.That(first.RootElement.GetProperty("time").GetDateTimeOffset(), Is.EqualTo(start), "written at start");
            Assert.That(first.RootElement.GetProperty("memoryBytes").GetInt64(), Is.Zero);
        }

        Assert.That(device.TryWrite(0, new byte[8192], fua: false), Is.True);
        time.Advance(TimeSpan.FromMilliseconds(999));
        using (var early = JsonDocument.Parse(await File.ReadAllTextAsync(StatusPath, ct)))
        {
            Assert.That(early.RootElement.GetProperty("time").GetDateTimeOffset(), Is.EqualTo(start), "not before the second is up");
        }

        time.Advance(TimeSpan.FromMilliseconds(1));
        using var next = await WaitForStatusAsync(s => s.GetProperty("time").GetDateTimeOffset() == start.AddSeconds(1), "the rewrite one second later", ct);
        Assert.That(next.RootElement.GetProperty("memoryBytes").GetInt64(), Is.EqualTo(8192));
        Assert.That(next.RootElement.GetProperty("backend").GetString(), Is.EqualTo("memory"));
        // Proven by the count, not by waiting: a rewrite at 999 ms would be a third.
        Assert.That(host.StatusWrites, Is.EqualTo(2), "not before the second is up: one write at start, one at the second");
    }

    [Test]
    public void The_option_is_read_by_its_key_and_a_missing_directory_is_refused()
    {
        var errors = new List<string>();
        var options = ServerSettings.Load(["--status-file", StatusPath], errors, out _);
        Assert.That(errors, Is.Empty);
        Assert.That(options.StatusFile, Is.EqualTo(StatusPath));

        ServerSettings.Load(["--status-file", Path.Combine(_directory, "no-such-dir", "status.json")], errors, out _);
        Assert.That(errors, Has.One.StartsWith("StatusFile:").And.Contains("existing directory"));
    }

    private async Task<JsonDocument> WaitForStatusAsync(Func<JsonElement, bool> condition, string what, CancellationToken ct)
    {
        string last = "(no file)";
        for (var i = 0; i < 200; i++)
        {
            if (File.Exists(StatusPath))
            {
                last = await File.ReadAllTextAsync(StatusPath, ct);
                var document = JsonDocument.Parse(last);
                if (condition(document.RootElement))
                {
                    return document;
                }

                document.Dispose();
            }

            await Task.Delay(50, ct);
        }

        throw new TimeoutException($"status file never showed {what}; last:\n{last}");
    }
}
