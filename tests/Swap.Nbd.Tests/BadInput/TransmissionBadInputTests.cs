using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.BadInput;

/// <summary>Bad requests in the transmission phase: error replies where the stream can go on, a close where it cannot (nbd-notes 1.12).</summary>
/// <remarks>Over 300 lines on purpose: one short test per rule of the notes, side by side so the list can be checked against them.</remarks>
[Category(Tier.Integration)]
public sealed class TransmissionBadInputTests
{
    private const ulong Size = 64UL << 20;
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(3);

    private static NbdRequest Request(RawNbdClient client, NbdCommand command, ulong offset, uint length, NbdCommandFlags flags = NbdCommandFlags.None) =>
        new(flags, command, client.NextCookie(), offset, length);

    /// <summary>A payload whose every 28 bytes are a DISC request: if the server ever parsed it as requests, it would hang up.</summary>
    private static byte[] TrapPayload(int length)
    {
        var payload = new byte[length];
        for (var at = 0; at + NbdRequest.Size <= length; at += NbdRequest.Size)
        {
            new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0).Write(payload.AsSpan(at));
        }

        return payload;
    }

    private static async Task AssertErrorAsync(RawNbdClient client, NbdRequest request, NbdError expected, CancellationToken ct, byte[]? payload = null)
    {
        await client.SendRequestAsync(request, payload ?? ReadOnlyMemory<byte>.Empty, ct);
        var reply = await client.ReadReplyAsync(ct);
        Assert.Multiple(() =>
        {
            Assert.That(reply.Cookie, Is.EqualTo(request.Cookie));
            Assert.That(reply.Error, Is.EqualTo(expected), $"{request.Command} at {request.Offset:x}+{request.Length:x} flags {request.Flags}");
            Assert.That(reply.Payload, client.StructuredReplies ? Has.Length.EqualTo(6) : Is.Empty, "an error reply carries no data");
        });
        if (client.StructuredReplies && request.Command is NbdCommand.Read or NbdCommand.BlockStatus)
        {
            Assert.That(reply.IsStructured, Is.True, "with structured replies every READ reply is a structured chunk");
        }

        if (reply.IsStructured)
        {
            Assert.That(reply.Chunk!.Value.Type, Is.EqualTo(NbdReplyChunkType.Error));
            Assert.That(reply.Chunk.Value.Flags, Is.EqualTo(NbdReplyFlags.Done));
        }
    }

    [Test, CancelAfter(15_000)]
    public async Task Request_with_bad_magic_closes_the_connection(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.OpenAsync(ct);
        var bytes = new byte[NbdRequest.Size];
        Request(bad, NbdCommand.Read, 0, 512).Write(bytes);
        bytes[3] ^= 0xFF;

        await bad.SendAsync(bytes, ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase((ushort)99), TestCase((ushort)8), TestCase((ushort)0xFFFF)]
    [CancelAfter(15_000)]
    public async Task Unknown_command_gets_EINVAL_and_the_connection_continues(ushort command, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await AssertErrorAsync(client, Request(client, (NbdCommand)command, 0, 4096), NbdError.Inval, ct);

        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(NbdCommand.Read, Size - 4096, 8192u, NbdError.Inval)]
    [TestCase(NbdCommand.Read, Size, 1u, NbdError.Inval)]
    [TestCase(NbdCommand.Trim, Size - 4096, 8192u, NbdError.Inval)]
    [TestCase(NbdCommand.Cache, Size, 4096u, NbdError.Inval)]
    [TestCase(NbdCommand.WriteZeroes, Size - 4096, 8192u, NbdError.NoSpc)]
    [TestCase(NbdCommand.Read, 0xFFFFFFFFFFFFF000UL, 0x2000u, NbdError.Inval)]
    [TestCase(NbdCommand.Trim, 0xFFFFFFFFFFFFF000UL, 0x2000u, NbdError.Inval)]
    [TestCase(NbdCommand.WriteZeroes, 0xFFFFFFFFFFFFF000UL, 0x2000u, NbdError.NoSpc)]
    [TestCase(NbdCommand.Read, 0xFFFFFFFFFFFFFFFFUL, 1u, NbdError.Inval)]
    [CancelAfter(15_000)]
    public async Task Out_of_range_request_gets_an_error(NbdCommand command, ulong offset, uint length, NbdError expected, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await AssertErrorAsync(client, Request(client, command, offset, length), expected, ct);

        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(Size - 4096, 8192, TestName = "Write_beyond_end_gets_ENOSPC_and_the_payload_is_consumed")]
    [TestCase(0xFFFFFFFFFFFFF000UL, 0x2000, TestName = "Write_with_overflowing_offset_gets_ENOSPC_and_the_payload_is_consumed")]
    [CancelAfter(15_000)]
    public async Task Write_out_of_range(ulong offset, int length, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await AssertErrorAsync(client, Request(client, NbdCommand.Write, offset, (uint)length), NbdError.NoSpc, ct, TrapPayload(length));

        await client.RoundTripAsync(ct);
        Assert.That(scenario.Server.Device.AllocatedBytes, Is.LessThan(1 << 20), "nothing of the refused payload was stored");
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(NbdCommand.Read, (ushort)0x8000)]
    [TestCase(NbdCommand.Read, (ushort)NbdCommandFlags.Df)]
    [TestCase(NbdCommand.Read, (ushort)NbdCommandFlags.ReqOne)]
    [TestCase(NbdCommand.Trim, (ushort)NbdCommandFlags.NoHole)]
    [TestCase(NbdCommand.Flush, (ushort)NbdCommandFlags.FastZero)]
    [TestCase(NbdCommand.Cache, (ushort)NbdCommandFlags.PayloadLen)]
    [CancelAfter(15_000)]
    public async Task Unknown_or_inapplicable_command_flags_get_EINVAL(NbdCommand command, ushort flags, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);
        var length = command == NbdCommand.Flush ? 0u : 4096u;

        await AssertErrorAsync(client, Request(client, command, 0, length, (NbdCommandFlags)flags), NbdError.Inval, ct);

        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Write_with_inapplicable_flag_gets_EINVAL_and_the_payload_is_consumed(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await AssertErrorAsync(client, Request(client, NbdCommand.Write, 0, 4096, NbdCommandFlags.ReqOne), NbdError.Inval, ct, TrapPayload(4096));

        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(4096UL, 0u), TestCase(0UL, 4096u)]
    [CancelAfter(15_000)]
    public async Task Flush_with_nonzero_offset_or_length_gets_EINVAL(ulong offset, uint length, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await AssertErrorAsync(client, Request(client, NbdCommand.Flush, offset, length), NbdError.Inval, ct);
        await AssertErrorAsync(client, Request(client, NbdCommand.Flush, 0, 0), NbdError.None, ct);

        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(false), TestCase(true)]
    [CancelAfter(15_000)]
    public async Task Read_of_64_MiB_gets_EINVAL_without_data(bool structured, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct, structured);

        await AssertErrorAsync(client, Request(client, NbdCommand.Read, 0, 64u << 20), NbdError.Inval, ct);

        // If data had followed the error, the next reply would not parse.
        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(20_000)]
    public async Task Write_of_64_MiB_gets_EOVERFLOW_after_its_payload_is_consumed(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await AssertErrorAsync(client, Request(client, NbdCommand.Write, 0, 64u << 20), NbdError.Overflow, ct, TrapPayload(64 << 20));

        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Write_claiming_1_GiB_closes_the_connection_without_reading_it(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var bad = await scenario.OpenAsync(ct);

        await bad.SendRequestAsync(Request(bad, NbdCommand.Write, 0, 1u << 30), new byte[4096], ct);

        Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Block_status_without_structured_replies_gets_EINVAL(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await AssertErrorAsync(client, Request(client, NbdCommand.BlockStatus, 0, 4096), NbdError.Inval, ct);

        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Block_status_without_a_meta_context_gets_a_structured_EINVAL(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct, structured: true);

        await AssertErrorAsync(client, Request(client, NbdCommand.BlockStatus, 0, 4096), NbdError.Inval, ct);

        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Block_status_with_a_meta_context_works_and_beyond_end_gets_EINVAL(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct, structured: true, metaContext: true);

        var request = Request(client, NbdCommand.BlockStatus, 0, 1 << 20);
        await client.SendRequestAsync(request, ct);
        var reply = await client.ReadReplyAsync(ct);
        Assert.That(reply.Chunk?.Type, Is.EqualTo(NbdReplyChunkType.BlockStatus));
        Assert.That(reply.Chunk!.Value.Flags, Is.EqualTo(NbdReplyFlags.Done));
        await AssertErrorAsync(client, Request(client, NbdCommand.BlockStatus, Size - 4096, 8192), NbdError.Inval, ct);
        await AssertErrorAsync(client, Request(client, NbdCommand.BlockStatus, 0, 0), NbdError.Inval, ct);

        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(14, TestName = "Half_a_request_header_then_close")]
    [TestCase(NbdRequest.Size + 2048, TestName = "Write_header_and_half_its_payload_then_close")]
    [CancelAfter(15_000)]
    public async Task Truncated_frame_just_closes_that_connection(int bytesSent, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using (var bad = await scenario.OpenAsync(ct))
        {
            var frame = new byte[NbdRequest.Size + 4096];
            Request(bad, NbdCommand.Write, 0, 4096).Write(frame);
            await bad.SendAsync(frame.AsMemory(0, bytesSent), ct);
            bad.Shutdown();
            Assert.That(await bad.ReadUntilClosedAsync(Prompt, ct), Is.Empty, "no reply to a request that never arrived");
        }

        await scenario.WaitForConnectionCountAsync(1, Prompt, ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Read_errors_are_structured_error_chunks_when_structured_replies_are_on(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct, structured: true);

        await AssertErrorAsync(client, Request(client, NbdCommand.Read, Size - 512, 1024), NbdError.Inval, ct);
        await AssertErrorAsync(client, Request(client, NbdCommand.Read, 0, 4096, (NbdCommandFlags)0x4000), NbdError.Inval, ct);
        await AssertErrorAsync(client, Request(client, NbdCommand.Read, 0xFFFFFFFFFFFFF000UL, 0x2000), NbdError.Inval, ct);
        // DF is valid once structured replies are on.
        var df = Request(client, NbdCommand.Read, 0, 4096, NbdCommandFlags.Df);
        await client.SendRequestAsync(df, ct);
        var reply = await client.ReadReplyAsync(ct);
        Assert.That(reply.Chunk?.Type, Is.EqualTo(NbdReplyChunkType.OffsetData));

        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [TestCase(false), TestCase(true)]
    [CancelAfter(15_000)]
    public async Task Zero_length_read_and_write_succeed(bool structured, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct, structured);

        await client.WriteAsync(4096, [], ct);
        Assert.That(await client.ReadAsync(4096, 0, ct), Is.Empty);
        await client.WriteAsync(Size, [], ct);
        Assert.That(await client.ReadAsync(Size, 0, ct), Is.Empty);

        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Pipelined_good_and_bad_requests_each_get_their_own_reply(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);
        var expected = new Dictionary<ulong, NbdError>();
        var batch = new MemoryStream();
        for (var i = 0; i < 50; i++)
        {
            var (request, payload, error) = (i % 5) switch
            {
                0 => (Request(client, NbdCommand.Write, (ulong)i * 4096, 4096), new byte[4096], NbdError.None),
                1 => (Request(client, NbdCommand.Write, Size, 4096), TrapPayload(4096), NbdError.NoSpc),
                2 => (Request(client, (NbdCommand)77, 0, 0), [], NbdError.Inval),
                3 => (Request(client, NbdCommand.Flush, 0, 0), [], NbdError.None),
                _ => (Request(client, NbdCommand.Write, 0, 4096, NbdCommandFlags.ReqOne), TrapPayload(4096), NbdError.Inval),
            };

            var header = new byte[NbdRequest.Size];
            request.Write(header);
            batch.Write(header);
            batch.Write(payload);
            expected[request.Cookie] = error;
        }

        var send = client.SendAsync(batch.ToArray(), ct);
        var actual = new Dictionary<ulong, NbdError>();
        for (var i = 0; i < expected.Count; i++)
        {
            var reply = await client.ReadReplyAsync(ct);
            actual.Add(reply.Cookie, reply.Error);
        }

        await send;
        Assert.That(actual, Is.EquivalentTo(expected));
        await client.RoundTripAsync(ct);
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Disconnect_gets_no_reply_and_closes(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using var client = await scenario.OpenAsync(ct);

        await client.SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0), ct);

        Assert.That(await client.ReadUntilClosedAsync(Prompt, ct), Is.Empty);
        await scenario.WaitForConnectionCountAsync(1, Prompt, ct);
        await scenario.AssertServerHealthyAsync(ct);
    }
}
