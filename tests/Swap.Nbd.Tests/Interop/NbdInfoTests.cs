using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>libnbd's nbdinfo against the real server: what it reports must match what the server means to advertise.</summary>
[Category(Tier.Interop)]
public sealed class NbdInfoTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [TestCase("tcp"), TestCase("unix")]
    [CancelAfter(30_000)]
    public async Task Json_reports_size_and_flags(string transport, CancellationToken ct)
    {
        await using var server = TestServer.Start(size: 48L << 20);
        var uri = transport == "tcp" ? server.TcpUri : server.UnixUri;

        var result = await ExternalTool.RunAsync("nbdinfo", "libnbd-bin", ["--json", uri], Timeout, ct);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        Assert.That(root.GetProperty("protocol").GetString(), Is.EqualTo("newstyle-fixed"), result.Stdout);
        var structured = root.GetProperty("structured").GetBoolean();
        Assert.That(structured, Is.True, "libnbd asks for structured replies and the server supports them");
        var export = root.GetProperty("exports")[0];
        var flags = server.Server.Export.FlagsFor(structured);
        Assert.Multiple(() =>
        {
            Assert.That(export.GetProperty("export-size").GetInt64(), Is.EqualTo(48L << 20));
            Assert.That(export.GetProperty("is_read_only").GetBoolean(), Is.EqualTo(flags.HasFlag(NbdTransmissionFlags.ReadOnly)));
            Assert.That(export.GetProperty("is_rotational").GetBoolean(), Is.EqualTo(flags.HasFlag(NbdTransmissionFlags.Rotational)));
            Assert.That(export.GetProperty("can_flush").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.SendFlush)));
            Assert.That(export.GetProperty("can_fua").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.SendFua)));
            Assert.That(export.GetProperty("can_trim").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.SendTrim)));
            Assert.That(export.GetProperty("can_zero").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.SendWriteZeroes)));
            Assert.That(export.GetProperty("can_fast_zero").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.SendFastZero)));
            Assert.That(export.GetProperty("can_multi_conn").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.CanMultiConn)));
            Assert.That(export.GetProperty("can_cache").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.SendCache)));
            Assert.That(export.GetProperty("can_df").GetBoolean(), Is.True.And.EqualTo(flags.HasFlag(NbdTransmissionFlags.SendDf)));
            Assert.That(export.GetProperty("contexts").EnumerateArray().Select(c => c.GetString()), Does.Contain("base:allocation"));
        });
    }

    [Test, CancelAfter(30_000)]
    public async Task List_shows_the_export_with_its_description(CancellationToken ct)
    {
        await using var server = TestServer.Start();

        var result = await ExternalTool.RunAsync("nbdinfo", "libnbd-bin", ["--list", "--json", server.TcpUri], Timeout, ct);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        var exports = json.RootElement.GetProperty("exports").EnumerateArray().ToList();
        Assert.That(exports, Has.Count.EqualTo(1), result.Stdout);
        Assert.Multiple(() =>
        {
            Assert.That(exports[0].GetProperty("export-name").GetString(), Is.EqualTo(server.Server.Export.Name));
            Assert.That(exports[0].GetProperty("description").GetString(), Is.EqualTo(server.Server.Export.Description));
            Assert.That(exports[0].GetProperty("export-size").GetInt64(), Is.EqualTo(server.Device.Size));
        });
    }

    [Test, CancelAfter(30_000)]
    public async Task Map_shows_written_range_as_data_and_the_rest_as_holes(CancellationToken ct)
    {
        await using var server = TestServer.Start(size: 16L << 20);
        await using (var client = await RawNbdClient.OpenAsync(server, ct))
        {
            var data = new byte[64 * 1024];
            new Random(7).NextBytes(data);
            await client.WriteAsync(1 << 20, data, ct);
        }

        var result = await ExternalTool.RunAsync("nbdinfo", "libnbd-bin", ["--map", "--json", server.UnixUri], Timeout, ct);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        var extents = json.RootElement.EnumerateArray()
            .Select(e => (Offset: e.GetProperty("offset").GetInt64(), Length: e.GetProperty("length").GetInt64(), Type: e.GetProperty("type").GetInt32()))
            .ToList();
        Assert.That(extents.Sum(e => e.Length), Is.EqualTo(16L << 20), result.Stdout);
        var data64K = extents.Where(e => e.Type == 0).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(data64K, Is.EqualTo(new[] { (1L << 20, 64L * 1024, 0) }), result.Stdout);
            Assert.That(extents.Where(e => e.Type != 0).Select(e => e.Type), Is.All.EqualTo(3), "everything else is hole,zero");
        });
    }
}
