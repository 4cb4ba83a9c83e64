using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Connection;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.BadInput;

/// <summary>
/// Bad input during the handshake (nbd-notes.md §1.12). After each, an already-open healthy connection and a new one
/// must still work: a bad client never disturbs the others.
/// </summary>
[Category("BadInput")]
public sealed class HandshakeBadInputTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    private static async Task AssertOthersUnharmedAsync(TestServer server, RawNbdClient healthy, CancellationToken ct)
    {
        await healthy.AssertHealthyAsync(ct);
        using var fresh = await RawNbdClient.TransmissionAsync(server, ct);
        await fresh.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Unknown_client_flags_close_the_connection(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using var bad = await RawNbdClient.GreetAsync(server, ct, (NbdClientFlags)0x80000001);
        Assert.That(await bad.IsClosedByServerAsync(Prompt, ct), Is.True);
        await AssertOthersUnharmedAsync(server, healthy, ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Option_with_bad_magic_closes_the_connection(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using var bad = await RawNbdClient.GreetAsync(server, ct);
        await bad.SendAsync(Convert.FromHexString("49484156454F5055" + "00000007" + "00000000"), ct);
        Assert.That(await bad.IsClosedByServerAsync(Prompt, ct), Is.True);
        await AssertOthersUnharmedAsync(server, healthy, ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Unknown_option_gets_ERR_UNSUP_and_its_data_is_consumed(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var client = await RawNbdClient.GreetAsync(server, ct);
        await client.SendOptionAsync((NbdOption)0x1234, new byte[100], ct);
        Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(NbdOptionReplyType.ErrUnsup));
        await client.SendOptionAsync(NbdOption.ExtendedHeaders, [], ct);
        Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(NbdOptionReplyType.ErrUnsup));
        await client.SendOptionAsync(NbdOption.List, [], ct);
        Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(NbdOptionReplyType.Ack), "the next option works");
    }

    [TestCase(NbdOption.List, "00", NbdOptionReplyType.ErrInvalid, TestName = "LIST with data")]
    [TestCase(NbdOption.StructuredReply, "00", NbdOptionReplyType.ErrInvalid, TestName = "STRUCTURED_REPLY with data")]
    [TestCase(NbdOption.Go, "00000009" + "61" + "0000", NbdOptionReplyType.ErrInvalid, TestName = "GO with inconsistent name length")]
    [TestCase(NbdOption.Info, "00000000" + "0003" + "0001", NbdOptionReplyType.ErrInvalid, TestName = "INFO with short info list")]
    [TestCase(NbdOption.Go, "00000003" + "6E6F70" + "0000", NbdOptionReplyType.ErrUnknown, TestName = "GO for an unknown export")]
    [TestCase(NbdOption.StartTls, "", NbdOptionReplyType.ErrPolicy, TestName = "STARTTLS without TLS configured")]
    [TestCase(NbdOption.SetMetaContext, "00000000" + "00000001" + "0000000F" + "626173653A616C6C6F636174696F6E", NbdOptionReplyType.ErrInvalid, TestName = "SET_META_CONTEXT before structured replies")]
    [TestCase(NbdOption.PeekExport, "", NbdOptionReplyType.ErrUnsup, TestName = "withdrawn PEEK_EXPORT")]
    [CancelAfter(30_000)]
    public async Task Bad_options_get_an_error_and_haggling_goes_on(NbdOption option, string hex, NbdOptionReplyType expected, CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var client = await RawNbdClient.GreetAsync(server, ct);
        await client.SendOptionAsync(option, Convert.FromHexString(hex), ct);
        Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(expected));

        var go = new byte[16];
        var n = NbdOptionCodec.WriteInfoRequest(go, "", []);
        await client.SendOptionAsync(NbdOption.Go, go.AsSpan(0, n).ToArray(), ct);
        Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(NbdOptionReplyType.Ack));
        await client.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Export_name_of_an_unknown_export_closes_the_connection(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using var bad = await RawNbdClient.GreetAsync(server, ct);
        await bad.SendOptionAsync(NbdOption.ExportName, "nosuch"u8.ToArray(), ct);
        Assert.That(await bad.IsClosedByServerAsync(Prompt, ct), Is.True);
        await AssertOthersUnharmedAsync(server, healthy, ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Export_name_default_enters_transmission_with_or_without_zero_padding(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var client = await RawNbdClient.GreetAsync(server, ct, NbdClientFlags.FixedNewstyle);
        await client.SendOptionAsync(NbdOption.ExportName, [], ct);
        var reply = await client.ReadAsync(NbdHandshake.ExportNameReplySize + NbdHandshake.ExportNameReplyPadding, ct);
        Assert.That(NbdHandshake.TryReadExportNameReply(reply, out var size, out var flags), Is.True);
        Assert.That(size, Is.EqualTo((ulong)server.Device.Size));
        Assert.That(flags.HasFlag(NbdTransmissionFlags.CanMultiConn), Is.True);
        Assert.That(reply.AsSpan(10).ToArray(), Is.All.EqualTo(0));
        await client.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Oversize_option_is_skipped_without_buffering_and_answered_ERR_TOO_BIG(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var client = await RawNbdClient.GreetAsync(server, ct);
        await client.SendOptionAsync((NbdOption)77, new byte[1 << 20], ct);
        Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(NbdOptionReplyType.ErrTooBig));
        await client.SendOptionAsync(NbdOption.List, [], ct);
        Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(NbdOptionReplyType.Ack));
    }

    [Test, CancelAfter(30_000)]
    public async Task Option_claiming_4_GiB_closes_the_connection_at_once(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using var bad = await RawNbdClient.GreetAsync(server, ct);
        await bad.SendOptionAsync((NbdOption)77, uint.MaxValue, [], ct);
        Assert.That(await bad.IsClosedByServerAsync(Prompt, ct), Is.True);
        await AssertOthersUnharmedAsync(server, healthy, ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Too_many_options_close_the_connection(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        using var client = await RawNbdClient.GreetAsync(server, ct);
        for (var i = 0; i < NbdConnection.MaxOptions; i++)
        {
            await client.SendOptionAsync(NbdOption.List, [], ct);
            Assert.That(await client.ReadFinalReplyAsync(ct), Is.EqualTo(NbdOptionReplyType.Ack));
        }

        await client.SendOptionAsync(NbdOption.List, [], ct);
        Assert.That(await client.IsClosedByServerAsync(Prompt, ct), Is.True);
    }

    [Test, CancelAfter(30_000)]
    public async Task A_stalled_handshake_times_out_while_others_keep_working(CancellationToken ct)
    {
        await using var server = TestServer.Start(configure: o => o.HandshakeTimeout = TimeSpan.FromSeconds(1));
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using var silent = await RawNbdClient.ConnectAsync(server, ct);
        using var halfway = await RawNbdClient.GreetAsync(server, ct);
        await healthy.AssertHealthyAsync(ct);
        Assert.That(await silent.IsClosedByServerAsync(TimeSpan.FromSeconds(5), ct), Is.True);
        Assert.That(await halfway.IsClosedByServerAsync(TimeSpan.FromSeconds(5), ct), Is.True);
        await AssertOthersUnharmedAsync(server, healthy, ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Connections_beyond_the_limit_are_closed_at_once(CancellationToken ct)
    {
        await using var server = TestServer.Start(configure: o => o.MaxConnections = 2);
        using var one = await RawNbdClient.TransmissionAsync(server, ct);
        using var two = await RawNbdClient.TransmissionAsync(server, ct);
        using var three = await RawNbdClient.ConnectAsync(server, ct);
        Assert.That(await three.IsClosedByServerAsync(Prompt, ct), Is.True);
        await one.AssertHealthyAsync(ct);
        await two.AssertHealthyAsync(ct);
    }
}
