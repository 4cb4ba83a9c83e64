using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Client;

/// <summary>Replies the real server never sends (out of order, split, holes, error messages, garbage), from a scripted server.</summary>
[Category(Tier.Integration)]
public sealed class ClientReplyHandlingTests
{
    private const NbdTransmissionFlags Flags = NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendTrim;

    [Test, CancelAfter(10_000)]
    public async Task Out_of_order_split_chunks_holes_and_error_messages(CancellationToken ct)
    {
        await using var server = new ScriptedNbdServer();
        var accept = server.AcceptAsync(1 << 20, Flags, ct);
        await using var client = await NbdClientConnection.ConnectAsync(server.Uri, ct: ct);
        await accept;

        // Pre-filled, so a hole that is not zeroed by the client shows.
        var first = Enumerable.Repeat((byte)0xee, 12).ToArray();
        var second = Enumerable.Repeat((byte)0xee, 8).ToArray();
        var readA = client.ReadAsync(100, first, ct).AsTask();
        var readB = client.ReadAsync(200, second, ct).AsTask();
        var flush = client.FlushAsync(ct).AsTask();
        var a = await server.ReadRequestAsync(ct);
        var b = await server.ReadRequestAsync(ct);
        var f = await server.ReadRequestAsync(ct);
        Assert.That((a.Command, a.Offset, a.Length, b.Offset, f.Command), Is.EqualTo((NbdCommand.Read, 100ul, 12u, 200ul, NbdCommand.Flush)));
        Assert.That(new[] { a.Cookie, b.Cookie, f.Cookie }, Is.Unique);

        // Flush first, then B's error, then A in three chunks: data at the end, a hole in the middle, data at the start.
        await server.SimpleAsync(f.Cookie, NbdError.None, null, ct);
        await server.ChunkAsync(b.Cookie, NbdReplyChunkType.Error, done: true, ScriptedNbdServer.ErrorPayload(NbdError.Io, "disk on fire"), ct);
        await server.ChunkAsync(a.Cookie, NbdReplyChunkType.OffsetData, done: false, ScriptedNbdServer.OffsetData(108, [9, 10, 11, 12]), ct);
        await server.ChunkAsync(a.Cookie, NbdReplyChunkType.OffsetHole, done: false, ScriptedNbdServer.OffsetHole(104, 4), ct);
        await server.ChunkAsync(a.Cookie, NbdReplyChunkType.OffsetData, done: true, ScriptedNbdServer.OffsetData(100, [1, 2, 3, 4]), ct);

        await flush;
        var error = Assert.ThrowsAsync<NbdServerErrorException>(async () => await readB);
        Assert.That((error!.Error, error.ServerMessage), Is.EqualTo((NbdError.Io, "disk on fire")));
        await readA;
        Assert.That(first, Is.EqualTo(new byte[] { 1, 2, 3, 4, 0, 0, 0, 0, 9, 10, 11, 12 }));

        // An unknown error chunk type fails the request but not the connection.
        var readC = client.ReadAsync(0, new byte[1], ct).AsTask();
        var c = await server.ReadRequestAsync(ct);
        await server.ChunkAsync(c.Cookie, (NbdReplyChunkType)0x8077, done: true, ScriptedNbdServer.ErrorPayload(NbdError.Perm, ""), ct);
        var unknown = Assert.ThrowsAsync<NbdServerErrorException>(async () => await readC);
        Assert.That(unknown!.Error, Is.EqualTo(NbdError.Perm));
        Assert.That(client.IsConnected, Is.True);

        // The scripted server does not answer DISC: hanging up ends the client's wait for it (DisconnectTimeout) at once.
        await server.DisposeAsync();
    }

    [Test, CancelAfter(10_000)]
    public async Task Block_status_extents_of_other_contexts_are_ignored(CancellationToken ct)
    {
        await using var server = new ScriptedNbdServer();
        var accept = server.AcceptAsync(1 << 20, Flags, ct);
        await using var client = await NbdClientConnection.ConnectAsync(server.Uri, ct: ct);
        await accept;

        var status = client.BlockStatusAsync(0, 8192, ct: ct);
        var request = await server.ReadRequestAsync(ct);
        Assert.That(request.Command, Is.EqualTo(NbdCommand.BlockStatus));
        await server.ChunkAsync(request.Cookie, NbdReplyChunkType.BlockStatus, done: false, Extents(99, (4096, 0)), ct);
        await server.ChunkAsync(request.Cookie, NbdReplyChunkType.BlockStatus, done: true, Extents(ScriptedNbdServer.ContextId, (4096, 3), (4096, 0)), ct);
        var extents = await status;
        Assert.That(extents, Is.EqualTo(new[]
        {
            new NbdExtent(4096, NbdAllocationState.Hole | NbdAllocationState.Zero),
            new NbdExtent(4096, NbdAllocationState.Data),
        }));

        // The scripted server does not answer DISC: hanging up ends the client's wait for it (DisconnectTimeout) at once.
        await server.DisposeAsync();
    }

    [TestCase("unknown-cookie")]
    [TestCase("bad-magic")]
    [TestCase("short-read")]
    [TestCase("data-outside-request")]
    [TestCase("simple-reply-to-structured-read")]
    [CancelAfter(10_000)]
    public async Task Protocol_violations_fail_every_pending_request_and_close(string violation, CancellationToken ct)
    {
        await using var server = new ScriptedNbdServer();
        var accept = server.AcceptAsync(1 << 20, Flags, ct);
        await using var client = await NbdClientConnection.ConnectAsync(server.Uri, ct: ct);
        await accept;

        var reads = Enumerable.Range(0, 3).Select(i => client.ReadAsync(i * 8, new byte[8], ct).AsTask()).ToArray();
        var requests = new List<NbdRequest>();
        for (var i = 0; i < reads.Length; i++)
        {
            requests.Add(await server.ReadRequestAsync(ct));
        }

        var r = requests[0];
        switch (violation)
        {
            case "unknown-cookie":
                await server.SimpleAsync(r.Cookie + 1000, NbdError.None, null, ct);
                break;
            case "bad-magic":
                await server.Stream.WriteAsync(new byte[] { 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, ct);
                break;
            case "short-read":
                await server.ChunkAsync(r.Cookie, NbdReplyChunkType.OffsetData, done: true, ScriptedNbdServer.OffsetData(r.Offset, [1, 2]), ct);
                break;
            case "data-outside-request":
                await server.ChunkAsync(r.Cookie, NbdReplyChunkType.OffsetData, done: true, ScriptedNbdServer.OffsetData(r.Offset + 4, new byte[8]), ct);
                break;
            case "simple-reply-to-structured-read":
                await server.SimpleAsync(r.Cookie, NbdError.None, new byte[8], ct);
                break;
        }

        foreach (var read in reads)
        {
            var ex = Assert.ThrowsAsync<NbdConnectionClosedException>(async () => await read);
            Assert.That(ex!.InnerException, Is.InstanceOf<NbdProtocolException>());
            Assert.That(ex.Message, Does.Contain("violated the NBD protocol"));
        }

        Assert.That(client.IsConnected, Is.False);
        Assert.ThrowsAsync<NbdConnectionClosedException>(async () => await client.ReadAsync(0, new byte[1], ct));
    }

    [Test, CancelAfter(10_000)]
    public async Task Server_hanging_up_fails_pending_requests(CancellationToken ct)
    {
        await using var server = new ScriptedNbdServer();
        var accept = server.AcceptAsync(1 << 20, Flags, ct);
        await using var client = await NbdClientConnection.ConnectAsync(server.Uri, ct: ct);
        await accept;
        var read = client.ReadAsync(0, new byte[8], ct).AsTask();
        await server.ReadRequestAsync(ct);
        server.Stream.Close();
        var ex = Assert.ThrowsAsync<NbdConnectionClosedException>(async () => await read);
        Assert.That(ex!.Message, Does.Contain("server closed the connection"));
    }

    private static byte[] Extents(uint contextId, params (uint Length, uint Flags)[] extents)
    {
        var payload = new byte[4 + (extents.Length * 8)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(payload, contextId);
        for (var i = 0; i < extents.Length; i++)
        {
            NbdStructuredReply.WriteExtent(payload.AsSpan(4 + (i * 8)), extents[i].Length, (NbdAllocationState)extents[i].Flags);
        }

        return payload;
    }
}
