using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>fio verifying every block it wrote through the whole slab system: server, three daemon processes, a backup file.</summary>
[Category(Tier.Interop)]
public sealed class SlabSystemFioTests
{
    [Test]
    [CancelAfter(120_000)]
    public async Task Fio_crc32c_verifies_through_server_three_daemon_processes_and_a_backup_file(CancellationToken ct)
    {
        await using var system = await SwapSystem.StartAsync(64L << 20, 4L << 20, daemons: 3, ct: ct);
        var output = Path.Combine(system.Directory, "fio.json");
        var result = await ExternalTool.RunAsync("fio", "fio", [
            "--name=verify", "--ioengine=nbd", $"--uri={system.Uri}", "--rw=randwrite", "--bs=4k",
            "--iodepth=32", "--size=64M", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1",
            "--output-format=json", $"--output={output}",
        ], TimeSpan.FromSeconds(90), ct);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(output, ct));
        var job = json.RootElement.GetProperty("jobs")[0];
        Assert.Multiple(() =>
        {
            Assert.That(job.GetProperty("error").GetInt32(), Is.Zero);
            Assert.That(job.GetProperty("read").GetProperty("io_bytes").GetInt64(), Is.EqualTo(64L << 20));
            var placed = system.Placements();
            Assert.That(placed, Is.Not.Empty, string.Join('\n', system.ServerLog));
            Assert.That(system.Daemons.Count(d => placed.Any(l => l.Contains(d.Name, StringComparison.Ordinal))), Is.GreaterThan(1), "slabs spread over the daemons");
        });
    }
}
