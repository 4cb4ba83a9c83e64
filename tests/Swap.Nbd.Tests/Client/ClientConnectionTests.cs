using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Client;

/// <summary>The client against the real server, in-process, over TCP and the Unix socket.</summary>
[Category(Tier.Integration)]
public sealed class ClientConnectionTests
{
    private const long Size = 64L << 20;

    [TestCase(false, true), TestCase(true, true), TestCase(false, false), TestCase(true, false)]
    [CancelAfter(20_000)]
    public async Task Write_then_read_round_trips(bool unix, bool structured, CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        await using var client = await NbdClientConnection.ConnectAsync(unix ? server.UnixUri : server.TcpUri,
            new NbdClientOptions { StructuredReplies = structured }, ct);
        Assert.Multiple(() =>
        {
            Assert.That(client.Size, Is.EqualTo(Size));
            Assert.That(client.StructuredReplies, Is.EqualTo(structured));
            Assert.That(client.TransmissionFlags.HasFlag(NbdTransmissionFlags.HasFlags), Is.True);
            Assert.That(client.Export.Name, Is.EqualTo("swapnbd"));
            Assert.That(client.Export.Description, Is.EqualTo("SwapNbd export"));
            Assert.That(client.Export.BlockSizeAdvertised, Is.True);
            Assert.That(client.Export.PreferredBlockSize, Is.EqualTo(4096u));
        });

        // Larger than the pipe's buffer, so the reply arrives over several socket reads.
        var data = new byte[1 << 20];
        new Random(1).NextBytes(data);
        await client.WriteAsync(12345, data, fua: true, ct);
        await client.FlushAsync(ct);
        var back = new byte[data.Length];
        await client.ReadAsync(12345, back, ct);
        Assert.That(back, Is.EqualTo(data));

        var empty = new byte[4096];
        await client.ReadAsync(Size - 4096, empty, ct);
        Assert.That(empty, Is.All.EqualTo(0));
    }

    [TestCase(true), TestCase(false)]
    [CancelAfter(60_000)]
    public async Task Many_concurrent_requests_match_a_reference_model(bool structured, CancellationToken ct)
    {
        const int tasks = 256;
        const int slot = 16 * 1024;
        await using var server = TestServer.Start(Size);
        await using var client = await NbdClientConnection.ConnectAsync(server.TcpUri, new NbdClientOptions { StructuredReplies = structured }, ct);
        var model = new byte[tasks * slot];
        var maxInFlight = 0;

        // Each task owns one slot, so concurrent requests never overlap and the model stays exact,
        // while all 256 tasks keep requests in flight on the one connection at the same time.
        await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            var random = new Random(t);
            for (var op = 0; op < 24; op++)
            {
                var offset = random.Next(slot - 1);
                var length = 1 + random.Next(Math.Min(slot - offset, 5000) - 1);
                var at = (t * slot) + offset;
                if (random.Next(2) == 0)
                {
                    var data = new byte[length];
                    random.NextBytes(data);
                    await client.WriteAsync(at, data, ct: ct);
                    data.CopyTo(model, at);
                }
                else
                {
                    var data = new byte[length];
                    await client.ReadAsync(at, data, ct);
                    Assert.That(data, Is.EqualTo(model.AsSpan(at, length).ToArray()), $"task {t} read at {at}+{length}");
                }

                InterlockedMax(ref maxInFlight, client.InFlight);
            }
        }, ct)));

        var all = new byte[model.Length];
        await client.ReadAsync(0, all, ct);
        Assert.That(all, Is.EqualTo(model));
        Assert.That(maxInFlight, Is.GreaterThan(8), "requests were really pipelined");
    }

    [Test, CancelAfter(20_000)]
    public async Task Trim_and_write_zeroes_read_back_as_zeroes_and_block_status_shows_holes(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        await using var client = await NbdClientConnection.ConnectAsync(server.TcpUri, ct: ct);
        var ones = Enumerable.Repeat((byte)0xff, 256 * 1024).ToArray();
        await client.WriteAsync(0, ones, ct: ct);
        await client.WriteAsync(1 << 20, ones, ct: ct);

        var before = await client.BlockStatusAsync(0, 64 * 1024, ct: ct);
        Assert.That(before, Is.Not.Empty);
        Assert.That(before[0].IsHole, Is.False, "written data is not a hole");

        await client.TrimAsync(0, 128 * 1024, ct: ct);
        await client.WriteZeroesAsync((1 << 20) + 4096, 8192, ct: ct);
        await client.WriteZeroesAsync((1 << 20) + 65536, 4096, noHole: true, ct: ct);
        await client.CacheAsync(0, 4096, ct);

        var back = new byte[ones.Length];
        await client.ReadAsync(0, back, ct);
        Assert.That(back.AsSpan(0, 128 * 1024).ToArray(), Is.All.EqualTo(0));
        Assert.That(back.AsSpan(128 * 1024).ToArray(), Is.All.EqualTo(0xff));

        await client.ReadAsync(1 << 20, back, ct);
        Assert.That(back.AsSpan(4096, 8192).ToArray(), Is.All.EqualTo(0));
        Assert.That(back.AsSpan(65536, 4096).ToArray(), Is.All.EqualTo(0));
        Assert.That(back.AsSpan(0, 4096).ToArray(), Is.All.EqualTo(0xff));
        Assert.That(back.AsSpan(12288, 4096).ToArray(), Is.All.EqualTo(0xff));

        var after = await client.BlockStatusAsync(0, 256 * 1024, ct: ct);
        Assert.That(after[0].IsHole, Is.True, "trimmed range is reported as a hole");
        Assert.That(after[0].Length, Is.GreaterThanOrEqualTo(64u * 1024));
        Assert.That(after.Any(e => !e.IsHole), Is.True, "the untrimmed tail is still data");

        var one = await client.BlockStatusAsync(0, 256 * 1024, reqOne: true, ct: ct);
        Assert.That(one, Has.Count.EqualTo(1));
    }

    [TestCase(true), TestCase(false)]
    [CancelAfter(20_000)]
    public async Task Server_errors_surface_as_typed_exceptions_and_the_connection_goes_on(bool structured, CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        await using var client = await NbdClientConnection.ConnectAsync(server.TcpUri, new NbdClientOptions { StructuredReplies = structured }, ct);
        await client.WriteAsync(0, new byte[] { 1, 2, 3 }, ct: ct);

        var readPastEnd = Assert.ThrowsAsync<NbdServerErrorException>(async () => await client.ReadAsync(Size, new byte[4096], ct));
        Assert.That(readPastEnd!.Error, Is.EqualTo(NbdError.Inval));
        Assert.That(readPastEnd.Command, Is.EqualTo(NbdCommand.Read));
        Assert.That(readPastEnd.Message, Does.Contain("EINVAL"));

        var writePastEnd = Assert.ThrowsAsync<NbdServerErrorException>(async () => await client.WriteAsync(Size - 1, new byte[2], ct: ct));
        Assert.That(writePastEnd!.Error, Is.EqualTo(NbdError.NoSpc));

        // Errors in the middle of a burst affect only their own requests.
        var tasks = Enumerable.Range(0, 50).Select(i => i % 5 == 0
            ? client.ReadAsync(Size + i, new byte[1], ct).AsTask()
            : client.ReadAsync(0, new byte[3], ct).AsTask()).ToArray();
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (NbdServerErrorException)
        {
        }

        Assert.That(tasks.Count(t => t.IsFaulted), Is.EqualTo(10));
        Assert.That(client.IsConnected, Is.True);
        var back = new byte[3];
        await client.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(new byte[] { 1, 2, 3 }));
    }

    [Test, CancelAfter(20_000)]
    public async Task Block_status_without_structured_replies_is_refused_client_side(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        await using var client = await NbdClientConnection.ConnectAsync(server.TcpUri, new NbdClientOptions { StructuredReplies = false }, ct);
        Assert.That(client.Negotiation.BaseAllocationContextId, Is.Null);
        Assert.ThrowsAsync<NotSupportedException>(async () => await client.BlockStatusAsync(0, 4096, ct: ct));
    }

    [Test, CancelAfter(20_000)]
    public async Task Disconnect_waits_for_outstanding_requests_then_refuses_new_ones(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        var client = await NbdClientConnection.ConnectAsync(server.UnixUri, ct: ct);
        var data = new byte[64 * 1024];
        var pending = Enumerable.Range(0, 32).Select(i => client.WriteAsync(i * data.Length, data, ct: ct).AsTask()).ToArray();
        await client.DisconnectAsync();
        await Task.WhenAll(pending);
        Assert.That(client.IsConnected, Is.False);
        Assert.ThrowsAsync<NbdConnectionClosedException>(async () => await client.ReadAsync(0, new byte[1], ct));
        await client.DisposeAsync();
    }

    [Test, CancelAfter(20_000)]
    public async Task Query_info_and_list_do_not_enter_transmission(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        var info = await NbdNegotiator.QueryInfoAsync(NbdUri.Parse(server.TcpUri), ct: ct);
        Assert.That((info.Export.Size, info.Export.Name, info.StructuredReplies, info.UsedExportName), Is.EqualTo((Size, "swapnbd", true, false)));
        var exports = await NbdNegotiator.ListExportsAsync(NbdUri.Parse(server.UnixUri), ct: ct);
        Assert.That(exports, Is.EqualTo(new[] { new NbdExportListing("swapnbd", "SwapNbd export") }));

        var raw = await NbdNegotiator.NegotiateAsync(NbdUri.Parse(server.TcpUri + "/swapnbd"), ct: ct);
        using (raw)
        {
            Assert.That(raw.Socket.Connected, Is.True);
            Assert.That(raw.Negotiation.Export.Size, Is.EqualTo(Size));
        }
    }

    [Test, CancelAfter(20_000)]
    public async Task Unknown_export_is_a_typed_option_error(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        var ex = Assert.ThrowsAsync<NbdOptionException>(async () => await NbdClientConnection.ConnectAsync(server.TcpUri + "/nope", ct: ct));
        Assert.That(ex!.Reply, Is.EqualTo(NbdOptionReplyType.ErrUnknown));
    }

    [Test, CancelAfter(20_000)]
    public async Task Refused_connection_names_the_endpoint(CancellationToken ct)
    {
        var port = Loopback.FreePort();
        var ex = Assert.ThrowsAsync<NbdConnectionClosedException>(async () => await NbdClientConnection.ConnectAsync($"nbd://127.0.0.1:{port}/", ct: ct));
        Assert.That(ex!.Message, Does.StartWith($"cannot connect to 127.0.0.1:{port}"));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
