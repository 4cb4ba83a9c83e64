using System.Buffers.Binary;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.BadInput;

/// <summary>Bad requests in the transmission phase: error replies where the stream can go on, a close where it cannot.</summary>
[Category("BadInput")]
public sealed class TransmissionBadInputTests
{
    private const long Size = 16L << 20;
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    [TestCase(NbdCommand.Read, Size - 4096, 8192u, NbdCommandFlags.None, NbdError.Inval, TestName = "READ beyond the end")]
    [TestCase(NbdCommand.Trim, Size, 1u, NbdCommandFlags.None, NbdError.Inval, TestName = "TRIM beyond the end")]
    [TestCase(NbdCommand.WriteZeroes, Size - 1, 2u, NbdCommandFlags.None, NbdError.NoSpc, TestName = "WRITE_ZEROES beyond the end")]
    [TestCase(NbdCommand.Cache, Size + 4096, 1u, NbdCommandFlags.None, NbdError.Inval, TestName = "CACHE beyond the end")]
    [TestCase(NbdCommand.Read, -4096L, 8192u, NbdCommandFlags.None, NbdError.Inval, TestName = "offset plus length overflows 2^64")]
    [TestCase((NbdCommand)99, 0L, 0u, NbdCommandFlags.None, NbdError.Inval, TestName = "unknown command")]
    [TestCase(NbdCommand.Read, 0L, 4096u, (NbdCommandFlags)0x8000, NbdError.Inval, TestName = "unknown command flag")]
    [TestCase(NbdCommand.Read, 0L, 4096u, NbdCommandFlags.NoHole, NbdError.Inval, TestName = "flag of another command")]
    [TestCase(NbdCommand.Read, 0L, 4096u, NbdCommandFlags.Df, NbdError.Inval, TestName = "DF without structured replies")]
    [TestCase(NbdCommand.Flush, 4096L, 0u, NbdCommandFlags.None, NbdError.Inval, TestName = "FLUSH with an offset")]
    [TestCase(NbdCommand.Read, 0L, 64u << 20, NbdCommandFlags.None, NbdError.Inval, TestName = "READ of 64 MiB")]
    [TestCase(NbdCommand.BlockStatus, 0L, 4096u, NbdCommandFlags.None, NbdError.Inval, TestName = "BLOCK_STATUS without a meta context")]
    [CancelAfter(30_000)]
    public async Task Bad_requests_get_an_error_reply_and_the_connection_goes_on(NbdCommand command, long offset, uint length, NbdCommandFlags flags, NbdError expected, CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        using var client = await RawNbdClient.TransmissionAsync(server, ct);
        // A negative offset stands for one near 2^64, to overflow offset + length.
        await client.SendRequestAsync(command, unchecked((ulong)offset), length, 0x1122334455667788, ct, flags);
        Assert.That(await client.ReadSimpleReplyAsync(ct), Is.EqualTo(new NbdSimpleReply(expected, 0x1122334455667788)));
        await client.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Write_beyond_the_end_gets_ENOSPC_and_its_payload_is_consumed(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        using var client = await RawNbdClient.TransmissionAsync(server, ct);
        var payload = new byte[65536];
        payload.AsSpan().Fill(0x25); // bytes that would look like a request magic if the server misread them
        await client.SendRequestAsync(NbdCommand.Write, Size - 4096, (uint)payload.Length, 1, ct, payload: payload);
        Assert.That(await client.ReadSimpleReplyAsync(ct), Is.EqualTo(new NbdSimpleReply(NbdError.NoSpc, 1)));
        await client.AssertHealthyAsync(ct);
        Assert.That(server.Device.AllocatedBytes, Is.EqualTo(4096), "only the health check's page was written");
    }

    [Test, CancelAfter(60_000)]
    public async Task Write_of_64_MiB_gets_EOVERFLOW_after_its_payload_is_consumed(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size * 8);
        using var client = await RawNbdClient.TransmissionAsync(server, ct);
        await client.SendRequestAsync(NbdCommand.Write, 0, 64u << 20, 2, ct, payload: new byte[64 << 20]);
        Assert.That(await client.ReadSimpleReplyAsync(ct), Is.EqualTo(new NbdSimpleReply(NbdError.Overflow, 2)));
        await client.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Write_claiming_1_GiB_closes_the_connection_without_reading_it(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using var bad = await RawNbdClient.TransmissionAsync(server, ct);
        await bad.SendRequestAsync(NbdCommand.Write, 0, 1u << 30, 3, ct);
        Assert.That(await bad.IsClosedByServerAsync(Prompt, ct), Is.True);
        await healthy.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Request_with_bad_magic_closes_only_that_connection(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using var bad = await RawNbdClient.TransmissionAsync(server, ct);
        var bytes = new byte[NbdRequest.Size];
        new NbdRequest(0, NbdCommand.Read, 1, 0, 512).Write(bytes);
        BinaryPrimitives.WriteUInt32BigEndian(bytes, 0x25609514);
        await bad.SendAsync(bytes, ct);
        Assert.That(await bad.IsClosedByServerAsync(Prompt, ct), Is.True);
        await healthy.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(30_000)]
    public async Task Truncated_frame_then_close_leaves_others_unharmed(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        using (var bad = await RawNbdClient.TransmissionAsync(server, ct))
        {
            var bytes = new byte[NbdRequest.Size];
            new NbdRequest(0, NbdCommand.Write, 1, 0, 4096).Write(bytes);
            await bad.SendAsync(bytes.AsMemory(0, 14), ct);
        }

        using (var bad = await RawNbdClient.TransmissionAsync(server, ct))
        {
            await bad.SendRequestAsync(NbdCommand.Write, 0, 4096, 2, ct, payload: new byte[100]);
        }

        await healthy.AssertHealthyAsync(ct);
        await Task.Delay(200, ct);
        Assert.That(server.Server.ConnectionCount, Is.EqualTo(1), "the truncated connections are gone");
    }

    [Test, CancelAfter(30_000)]
    public async Task With_structured_replies_a_read_error_is_a_structured_error_chunk(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        using var client = await RawNbdClient.TransmissionAsync(server, ct, structured: true);
        await client.SendRequestAsync(NbdCommand.Read, Size, 512, 9, ct);
        var chunk = await client.ReadAsync(NbdStructuredReply.ErrorSize, ct);
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(chunk), Is.EqualTo(NbdMagic.StructuredReply));
        Assert.That(NbdStructuredReply.Read(chunk), Is.EqualTo(new NbdStructuredReply(NbdReplyFlags.Done, NbdReplyChunkType.Error, 9, 6)));
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(chunk.AsSpan(20)), Is.EqualTo((uint)NbdError.Inval));

        // DF is allowed once structured replies are on; the data comes as one OFFSET_DATA chunk.
        await client.SendRequestAsync(NbdCommand.Read, 4096, 512, 10, ct, NbdCommandFlags.Df);
        var data = await client.ReadAsync(NbdStructuredReply.OffsetDataPrefixSize + 512, ct);
        Assert.That(NbdStructuredReply.Read(data), Is.EqualTo(new NbdStructuredReply(NbdReplyFlags.Done, NbdReplyChunkType.OffsetData, 10, 520)));
    }

    [Test, CancelAfter(30_000)]
    public async Task Zero_length_read_and_write_succeed(CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        using var client = await RawNbdClient.TransmissionAsync(server, ct);
        await client.SendRequestAsync(NbdCommand.Write, 4096, 0, 1, ct);
        Assert.That(await client.ReadSimpleReplyAsync(ct), Is.EqualTo(new NbdSimpleReply(NbdError.None, 1)));
        await client.SendRequestAsync(NbdCommand.Read, 4096, 0, 2, ct);
        Assert.That(await client.ReadSimpleReplyAsync(ct), Is.EqualTo(new NbdSimpleReply(NbdError.None, 2)));
        await client.AssertHealthyAsync(ct);
    }

    [Test, CancelAfter(120_000)]
    public async Task Fuzzed_frames_never_crash_the_server_or_disturb_a_healthy_connection(CancellationToken ct)
    {
        // Hundreds of connections open and close in quick succession; the default limit of 64 would refuse some.
        await using var server = TestServer.Start(Size, o => (o.HandshakeTimeout, o.MaxConnections) = (TimeSpan.FromSeconds(1), 1024));
        using var healthy = await RawNbdClient.TransmissionAsync(server, ct);
        var rng = new Random(20261123);
        for (var i = 0; i < 200; i++)
        {
            // Random bytes straight after the greeting.
            using var blob = await RawNbdClient.ConnectAsync(server, ct);
            var bytes = new byte[rng.Next(1, 400)];
            rng.NextBytes(bytes);
            try
            {
                await blob.SendAsync(bytes, ct);
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Closed before we finished sending: fine.
            }
        }

        for (var i = 0; i < 200; i++)
        {
            // Well-framed requests with random fields, several on one connection.
            using var client = await RawNbdClient.TransmissionAsync(server, ct, structured: rng.Next(2) == 0);
            for (var j = 0; j < 5; j++)
            {
                var command = (NbdCommand)rng.Next(0, 10);
                var length = (uint)(rng.Next(3) == 0 ? rng.NextInt64(0, uint.MaxValue) : rng.Next(0, 1 << 16));
                var offset = rng.Next(2) == 0 ? (ulong)rng.NextInt64() : (ulong)rng.NextInt64(0, Size);
                var payload = command == NbdCommand.Write && length <= 1 << 16 ? new byte[length] : null;
                try
                {
                    await client.SendRequestAsync(command, offset, length, (ulong)j, ct, (NbdCommandFlags)rng.Next(0, 64), payload);
                }
                catch (System.Net.Sockets.SocketException)
                {
                    break; // the server may hang up on what it cannot resync (a DoS-sized WRITE, a DISC)
                }
            }
        }

        await healthy.AssertHealthyAsync(ct);
        using var fresh = await RawNbdClient.TransmissionAsync(server, ct);
        await fresh.AssertHealthyAsync(ct);

        // Every fuzzed connection ends; nothing is left hanging in the server.
        for (var i = 0; i < 50 && server.Server.ConnectionCount > 2; i++)
        {
            await Task.Delay(100, ct);
        }

        Assert.That(server.Server.ConnectionCount, Is.EqualTo(2));
    }
}
