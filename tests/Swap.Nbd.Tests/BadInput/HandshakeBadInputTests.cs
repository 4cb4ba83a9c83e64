using System.Buffers.Binary;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Handshake;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.BadInput;

/// <summary>Misbehaving clients during option haggling (nbd-notes 1.2, 1.3, 1.12).</summary>
/// <remarks>Over 300 lines on purpose: one short test per rule of the notes, side by side so the list can be checked against them.</remarks>
[Category(Tier.Integration)]
public sealed class HandshakeBadInputTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(3);

    [Test, CancelAfter(15_000)]
    public async Task Unknown_client_flag_bits_close_the_connection(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.ConnectAsync(ct);
        await bad.ReadGreetingAsync(ct);

        await bad.SendClientFlagsAsync((uint)NbdClientFlags.FixedNewstyle | 0x4 | 0x8000_0000, ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Option_with_bad_magic_closes_the_connection(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.ConnectAsync(ct);
        await bad.StartOptionsAsync(ct);

        await bad.SendOptionAsync(0x49484156454F5055, (uint)NbdOption.List, [], 0, ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Unknown_option_gets_ERR_UNSUP_and_its_data_is_consumed(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        var data = new byte[100];
        // Data that would parse as an option header if the server did not skip it.
        NbdOptionCodec.WriteHeader(data, NbdOption.Abort, 0);

        await client.SendOptionAsync((NbdOption)0x1234, data, ct);
        var reply = await client.ReadOptionReplyAsync(ct);

        Assert.That(reply.Option, Is.EqualTo((NbdOption)0x1234));
        Assert.That(reply.Type, Is.EqualTo(NbdOptionReplyType.ErrUnsup));
        // The next option is understood, so the 100 bytes were consumed exactly.
        var go = await client.GoAsync("", ct);
        Assert.That(go[^1].Type, Is.EqualTo(NbdOptionReplyType.Ack));
        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(NbdOption.List)]
    [TestCase(NbdOption.StructuredReply)]
    [TestCase(NbdOption.StartTls)]
    [CancelAfter(15_000)]
    public async Task Option_that_takes_no_data_with_data_gets_ERR_INVALID(NbdOption option, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);

        await client.SendOptionAsync(option, [1, 2, 3, 4, 5], ct);
        var reply = await client.ReadOptionReplyAsync(ct);

        Assert.That(reply.Option, Is.EqualTo(option));
        Assert.That(reply.Type, Is.EqualTo(NbdOptionReplyType.ErrInvalid));
        await client.HandshakeAfterOptionsAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task List_without_data_lists_the_export(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);

        await client.SendOptionAsync(NbdOption.List, [], ct);
        var replies = await client.ReadOptionRepliesAsync(ct);

        Assert.That(replies.Select(r => r.Type), Is.EqualTo(new[] { NbdOptionReplyType.Server, NbdOptionReplyType.Ack }));
        var nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(replies[0].Data);
        Assert.That(System.Text.Encoding.UTF8.GetString(replies[0].Data, 4, nameLength), Is.EqualTo(scenario.Server.Server.Export.Name));
    }

    [TestCase(NbdOption.Info, 100u, TestName = "Info_with_name_length_past_the_data_gets_ERR_INVALID")]
    [TestCase(NbdOption.Go, 100u, TestName = "Go_with_name_length_past_the_data_gets_ERR_INVALID")]
    [TestCase(NbdOption.Go, 0xFFFFFFFFu, TestName = "Go_with_huge_name_length_gets_ERR_INVALID")]
    [TestCase(NbdOption.Go, 3u, TestName = "Go_with_short_name_length_leaving_odd_info_list_gets_ERR_INVALID")]
    [CancelAfter(15_000)]
    public async Task Info_or_go_with_inconsistent_lengths(NbdOption option, uint nameLength, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        // "swapnbd" with 0 info requests, but the name length field lies.
        var data = new byte[4 + 7 + 2];
        BinaryPrimitives.WriteUInt32BigEndian(data, nameLength);
        "swapnbd"u8.CopyTo(data.AsSpan(4));

        await client.SendOptionAsync(option, data, ct);
        var reply = await client.ReadOptionReplyAsync(ct);

        Assert.That(reply.Type, Is.EqualTo(NbdOptionReplyType.ErrInvalid));
        await client.HandshakeAfterOptionsAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Go_with_info_count_larger_than_the_data_gets_ERR_INVALID(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        var data = new byte[4 + 0 + 2 + 2];
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4), 1000);

        await client.SendOptionAsync(NbdOption.Go, data, ct);

        Assert.That((await client.ReadOptionReplyAsync(ct)).Type, Is.EqualTo(NbdOptionReplyType.ErrInvalid));
        await client.HandshakeAfterOptionsAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(NbdOption.Go), TestCase(NbdOption.Info)]
    [CancelAfter(15_000)]
    public async Task Go_or_info_for_unknown_export_gets_ERR_UNKNOWN(NbdOption option, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        var data = new byte[64];
        var length = NbdOptionCodec.WriteInfoRequest(data, "no-such-export", [NbdInfoType.Name]);

        await client.SendOptionAsync(option, data[..length], ct);
        var replies = await client.ReadOptionRepliesAsync(ct);

        Assert.That(replies.Select(r => r.Type), Is.EqualTo(new[] { NbdOptionReplyType.ErrUnknown }), "no INFO before the error");
        await client.HandshakeAfterOptionsAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Export_name_of_unknown_export_closes_the_connection(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.ConnectAsync(ct);
        await bad.StartOptionsAsync(ct);

        await bad.SendOptionAsync(NbdOption.ExportName, RawNbdClient.Utf8("no-such-export"), ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty, "EXPORT_NAME cannot be answered with an error");
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Export_name_of_the_export_enters_transmission(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);

        await client.SendOptionAsync(NbdOption.ExportName, RawNbdClient.Utf8(scenario.Server.Server.Export.Name), ct);
        var reply = await client.ReadExactAsync(NbdHandshake.ExportNameReplySize, ct);

        Assert.That(BinaryPrimitives.ReadUInt64BigEndian(reply), Is.EqualTo((ulong)scenario.Server.Device.Size));
        await client.RoundTripAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task StartTls_gets_ERR_POLICY(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);

        await client.SendOptionAsync(NbdOption.StartTls, [], ct);

        Assert.That((await client.ReadOptionReplyAsync(ct)).Type, Is.EqualTo(NbdOptionReplyType.ErrPolicy));
        await client.HandshakeAfterOptionsAsync(ct);
    }

    [TestCase(NbdOption.SetMetaContext), TestCase(NbdOption.ListMetaContext)]
    [CancelAfter(15_000)]
    public async Task Meta_context_before_structured_reply_gets_ERR_INVALID(NbdOption option, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        var data = new byte[64];
        var length = NbdOptionCodec.WriteMetaContextRequest(data, "", ["base:allocation"]);

        await client.SendOptionAsync(option, data[..length], ct);

        Assert.That((await client.ReadOptionRepliesAsync(ct)).Select(r => r.Type), Is.EqualTo(new[] { NbdOptionReplyType.ErrInvalid }));
        await client.HandshakeAfterOptionsAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Meta_context_with_bad_query_length_gets_ERR_INVALID(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        await client.SendOptionAsync(NbdOption.StructuredReply, [], ct);
        Assert.That((await client.ReadOptionReplyAsync(ct)).Type, Is.EqualTo(NbdOptionReplyType.Ack));
        var data = new byte[64];
        var length = NbdOptionCodec.WriteMetaContextRequest(data, "", ["base:allocation"]);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(8), 200); // query length beyond the data

        await client.SendOptionAsync(NbdOption.SetMetaContext, data[..length], ct);

        Assert.That((await client.ReadOptionRepliesAsync(ct)).Select(r => r.Type), Is.EqualTo(new[] { NbdOptionReplyType.ErrInvalid }));
        await client.HandshakeAfterOptionsAsync(ct);
    }

    [Test, CancelAfter(20_000)]
    public async Task Option_of_1_MiB_gets_ERR_TOO_BIG_and_is_skipped_not_buffered(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        var data = new byte[1 << 20];
        // Every 16 bytes look like an option header: a server that lost its place would answer one of them.
        for (var i = 0; i < data.Length; i += NbdOptionHeader.Size)
        {
            NbdOptionCodec.WriteHeader(data.AsSpan(i), NbdOption.List, 0);
        }

        var frame = new byte[NbdOptionHeader.Size + data.Length];
        NbdOptionCodec.WriteHeader(frame, NbdOption.Go, (uint)data.Length);
        data.CopyTo(frame, NbdOptionHeader.Size);

        // Warm up the path (pipe segments, pools) with a smaller oversize option, so only per-byte buffering would show.
        await client.SendOptionAsync(NbdOption.Go, data[..(128 * 1024)], ct);
        Assert.That((await client.ReadOptionReplyAsync(ct)).Type, Is.EqualTo(NbdOptionReplyType.ErrTooBig));

        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        await client.SendAsync(frame, ct);
        var reply = await client.ReadOptionReplyAsync(ct);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        Assert.That(reply.Option, Is.EqualTo(NbdOption.Go));
        Assert.That(reply.Type, Is.EqualTo(NbdOptionReplyType.ErrTooBig));
        Assert.That(allocated, Is.LessThan(256 * 1024), "the server must skip oversize option data, not buffer it");
        await client.HandshakeAfterOptionsAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Option_length_0xFFFFFFFF_closes_the_connection_promptly(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.ConnectAsync(ct);
        await bad.StartOptionsAsync(ct);

        await bad.SendOptionAsync(NbdMagic.IHaveOpt, (uint)NbdOption.Go, [], 0xFFFFFFFF, ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Export_name_longer_than_the_option_limit_closes_the_connection(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.ConnectAsync(ct);
        await bad.StartOptionsAsync(ct);

        await bad.SendOptionAsync(NbdMagic.IHaveOpt, (uint)NbdOption.ExportName, [], 1 << 20, ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task More_than_MaxOptions_options_close_the_connection(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.ConnectAsync(ct);
        await bad.StartOptionsAsync(ct);

        for (var i = 0; i < ServerHandshake.MaxOptions; i++)
        {
            await bad.SendOptionAsync((NbdOption)0x1000, [], ct);
            Assert.That((await bad.ReadOptionReplyAsync(ct)).Type, Is.EqualTo(NbdOptionReplyType.ErrUnsup), $"option {i}");
        }

        await bad.SendOptionAsync((NbdOption)0x1000, [], ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty, $"option {ServerHandshake.MaxOptions + 1} is one too many");
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Abort_is_acknowledged_and_the_connection_closes(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);

        await client.SendOptionAsync(NbdOption.Abort, [9, 9, 9], ct);

        Assert.That((await client.ReadOptionReplyAsync(ct)).Type, Is.EqualTo(NbdOptionReplyType.Ack));
        Assert.That(await client.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Export_name_without_NO_ZEROES_gets_the_124_byte_padding(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.ReadGreetingAsync(ct);
        await client.SendClientFlagsAsync((uint)NbdClientFlags.FixedNewstyle, ct);

        await client.SendOptionAsync(NbdOption.ExportName, [], ct);
        var reply = await client.ReadExactAsync(NbdHandshake.ExportNameReplySize + NbdHandshake.ExportNameReplyPadding, ct);

        Assert.That(reply.AsSpan(NbdHandshake.ExportNameReplySize).IndexOfAnyExcept((byte)0), Is.EqualTo(-1));
        await client.RoundTripAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Info_then_go_return_the_same_export_information(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.ConnectAsync(ct);
        await client.StartOptionsAsync(ct);
        var data = new byte[64];
        var length = NbdOptionCodec.WriteInfoRequest(data, "swapnbd", [NbdInfoType.BlockSize, NbdInfoType.Name, NbdInfoType.Description, (NbdInfoType)77]);

        await client.SendOptionAsync(NbdOption.Info, data[..length], ct);
        var info = await client.ReadOptionRepliesAsync(ct);
        await client.SendOptionAsync(NbdOption.Go, data[..length], ct);
        var go = await client.ReadOptionRepliesAsync(ct);

        Assert.That(go.Select(r => (r.Type, Convert.ToHexString(r.Data))), Is.EqualTo(info.Select(r => (r.Type, Convert.ToHexString(r.Data)))));
        var blockSize = info.Single(r => r.Type == NbdOptionReplyType.Info && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == (ushort)NbdInfoType.BlockSize).Data;
        Assert.Multiple(() =>
        {
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(blockSize.AsSpan(2)), Is.EqualTo(1u), "minimum");
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(blockSize.AsSpan(6)), Is.EqualTo(4096u), "preferred");
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(blockSize.AsSpan(10)), Is.EqualTo(32u << 20), "maximum payload");
        });
        await client.RoundTripAsync(ct);
    }
}
