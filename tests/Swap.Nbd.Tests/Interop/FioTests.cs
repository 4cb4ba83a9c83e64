using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>fio's nbd engine writes with CRC32C verify headers and reads everything back.</summary>
[Category(Tier.Interop)]
public sealed class FioTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [TestCase("randwrite", "4k", 32, "16M", TestName = "Fio_4K_random_write_QD32_verifies")]
    [TestCase("write", "128k", 8, "64M", TestName = "Fio_128K_sequential_write_verifies")]
    [CancelAfter(45_000)]
    public async Task Fio_write_then_verify(string rw, string blockSize, int depth, string size, CancellationToken ct)
    {
        await using var server = TestServer.Start(size: 64L << 20);
        var output = Path.Combine(server.Directory, "fio.json");

        var result = await ExternalTool.RunAsync("fio", "fio", [
            "--name=verify", "--ioengine=nbd", $"--uri={server.TcpUri}", $"--rw={rw}", $"--bs={blockSize}",
            $"--iodepth={depth}", $"--size={size}", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1",
            "--runtime=10", "--output-format=json", $"--output={output}",
        ], Timeout, ct);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(output, ct));
        var job = json.RootElement.GetProperty("jobs")[0];
        var written = job.GetProperty("write").GetProperty("io_bytes").GetInt64();
        var verified = job.GetProperty("read").GetProperty("io_bytes").GetInt64();
        Assert.Multiple(() =>
        {
            Assert.That(job.GetProperty("error").GetInt32(), Is.Zero, "fio job error (a verify failure sets it)");
            Assert.That(written, Is.GreaterThan(0));
            Assert.That(verified, Is.EqualTo(written), "the verify pass read back everything that was written");
            Assert.That(result.Stderr, Does.Not.Contain("verify:").And.Not.Contain("bad magic"), result.ToString());
        });
    }
}
