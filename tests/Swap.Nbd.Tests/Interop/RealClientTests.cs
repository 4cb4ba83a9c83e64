using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>Real NBD clients from Debian (libnbd's nbdinfo and nbdcopy, fio's nbd engine, qemu-img, qemu-io).</summary>
[Category("Interop")]
public sealed class RealClientTests
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(90);

    [TestCase(false)]
    [TestCase(true)]
    [CancelAfter(60_000)]
    public async Task Nbdinfo_sees_size_and_every_flag(bool unix, CancellationToken ct)
    {
        await using var server = TestServer.Start(48L << 20);
        var (exit, output) = await Repo.RunAsync("nbdinfo", ["--json", unix ? server.UnixUri : server.TcpUri], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        using var json = JsonDocument.Parse(output);
        var export = json.RootElement.GetProperty("exports")[0];
        Assert.That(json.RootElement.GetProperty("protocol").GetString(), Is.EqualTo("newstyle-fixed"));
        Assert.That(export.GetProperty("export-size").GetInt64(), Is.EqualTo(48L << 20));
        foreach (var flag in new[] { "can_flush", "can_fua", "can_trim", "can_zero", "can_multi_conn", "can_cache", "can_fast_zero", "can_df" })
        {
            Assert.That(export.GetProperty(flag).GetBoolean(), Is.True, flag);
        }

        Assert.That(export.GetProperty("is_read_only").GetBoolean(), Is.False);
        Assert.That(export.GetProperty("block_size_maximum").GetInt64(), Is.EqualTo(32 << 20));
    }

    [Test, CancelAfter(60_000)]
    public async Task Nbdinfo_lists_the_export_and_maps_data_and_holes(CancellationToken ct)
    {
        await using var server = TestServer.Start(16L << 20);
        var (exit, output) = await Repo.RunAsync("nbdinfo", ["--list", server.TcpUri], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("export=\"swapnbd\""));

        server.Device.TryWrite(1 << 20, new byte[1 << 20], fua: false);
        (exit, output) = await Repo.RunAsync("nbdinfo", ["--map", server.TcpUri], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "0     1048576    3  hole,zero",
            "1048576     1048576    0  data",
            "2097152    14680064    3  hole,zero",
        }).Using<string>((a, b) => string.Join(' ', a.Split(' ', StringSplitOptions.RemoveEmptyEntries)) == string.Join(' ', b.Split(' ', StringSplitOptions.RemoveEmptyEntries))));
    }

    [TestCase(1)]
    [TestCase(4)]
    [CancelAfter(120_000)]
    public async Task Nbdcopy_round_trips_random_data(int connections, CancellationToken ct)
    {
        await using var server = TestServer.Start(48L << 20);
        var source = Path.Combine(server.Directory, "in.bin");
        var back = Path.Combine(server.Directory, "out.bin");
        var data = new byte[48 << 20];
        new Random(connections).NextBytes(data);
        await File.WriteAllBytesAsync(source, data, ct);

        var c = connections.ToString(CultureInfo.InvariantCulture);
        var (exit, output) = await Repo.RunAsync("nbdcopy", ["--connections", c, source, server.TcpUri], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        (exit, output) = await Repo.RunAsync("nbdcopy", ["--connections", c, server.UnixUri, back], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        Assert.That((await File.ReadAllBytesAsync(back, ct)).AsSpan().SequenceEqual(data), Is.True, "data read back differs");
        // nbdcopy opens several connections only where the server offers multi-conn, and then not always all of them.
        Assert.That(server.Server.AcceptedConnections, connections == 1 ? Is.EqualTo(2) : Is.GreaterThan(2));
    }

    [TestCase("randwrite", "4k", 32)]
    [TestCase("write", "128k", 8)]
    [CancelAfter(120_000)]
    public async Task Fio_nbd_engine_verifies_crc32c(string rw, string bs, int iodepth, CancellationToken ct)
    {
        await using var server = TestServer.Start(128L << 20);
        var (exit, output) = await Repo.RunAsync("fio",
        [
            "--name=verify", "--ioengine=nbd", $"--uri={server.TcpUri}", $"--rw={rw}", $"--bs={bs}",
            $"--iodepth={iodepth}", "--size=64M", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1",
            "--randrepeat=1", "--output-format=json",
        ], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        using var json = JsonDocument.Parse(output[output.IndexOf('{', StringComparison.Ordinal)..]);
        var job = json.RootElement.GetProperty("jobs")[0];
        Assert.That(job.GetProperty("error").GetInt32(), Is.Zero);
        Assert.That(job.GetProperty("write").GetProperty("io_bytes").GetInt64(), Is.EqualTo(64L << 20));
        Assert.That(job.GetProperty("read").GetProperty("io_bytes").GetInt64(), Is.EqualTo(64L << 20), "the verify pass read everything back");
    }

    [Test, CancelAfter(120_000)]
    public async Task Qemu_img_convert_and_compare(CancellationToken ct)
    {
        await using var server = TestServer.Start(32L << 20);
        var image = Path.Combine(server.Directory, "image.raw");
        var data = new byte[32 << 20];
        new Random(7).NextBytes(data.AsSpan(0, 8 << 20));
        new Random(8).NextBytes(data.AsSpan(20 << 20, 3 << 20));
        await File.WriteAllBytesAsync(image, data, ct);

        var (exit, output) = await Repo.RunAsync("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, server.TcpUri], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        (exit, output) = await Repo.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, server.TcpUri], ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("Images are identical"));

        // Change one byte behind qemu's back: compare must notice.
        server.Device.TryWrite(21 << 20, [(byte)(data[21 << 20] ^ 0xff)], fua: false);
        (exit, _) = await Repo.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, server.TcpUri], ToolTimeout, ct);
        Assert.That(exit, Is.EqualTo(1));
    }

    [Test, CancelAfter(60_000)]
    public async Task Qemu_io_writes_and_reads_a_pattern(CancellationToken ct)
    {
        await using var server = TestServer.Start(16L << 20);
        var (exit, output) = await Repo.RunAsync("qemu-io",
            ["-f", "raw", server.TcpUri, "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M", "-c", "read -P 0 1M 1M", "-c", "discard 0 1M"],
            ToolTimeout, ct);
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Not.Contain("Pattern verification failed"));
        Assert.That(output, Does.Contain("read 1048576/1048576 bytes"));
        Assert.That(server.Device.AllocatedBytes, Is.Zero, "discard gave the megabyte back");
    }
}
