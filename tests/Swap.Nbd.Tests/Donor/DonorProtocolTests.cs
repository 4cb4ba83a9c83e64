using NUnit.Framework;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Donor;

[Category(Tier.Integration)]
public sealed class DonorProtocolTests
{
    private const ulong Slab = TestDonor.Slab;

    [Test, CancelAfter(20_000)]
    public async Task The_handshake_comes_first_and_only_once(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using (var early = await donor.ConnectAsync(ct))
        {
            Assert.That((await early.QueryFreeAsync(Slab, ct)).Status, Is.EqualTo(DaemonStatus.HelloFirst));
            Assert.That(await early.IsClosedByPeerAsync(ct), Is.True, "a request before the handshake closes the connection");
        }

        await using var client = await donor.ConnectAsync(ct);
        Assert.That(await client.HelloAsync(7, ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(await client.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 64u)), "MaxMemory 64 MiB in 1 MiB slabs");
        var body = new byte[DaemonHello.Size];
        new DaemonHello(DaemonFrameHeader.Version, 7).Write(body, new byte[DaemonAuthProof.NonceSize]);
        await client.SendAsync(DaemonOpcode.Hello, 99, body, ct);
        Assert.That(await client.IsClosedByPeerAsync(ct), Is.True, "a second HELLO on one connection is a protocol violation");
        Assert.That(donor.Log.Entries.Select(e => e.Message), Has.Some.Contains("a second HELLO"));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_connection_without_HELLO_is_closed_after_HelloTimeout(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.HelloTimeout = TimeSpan.FromSeconds(10));
        await using var silent = await donor.ConnectAsync(ct);
        await using var halfway = await donor.ConnectAsync(ct);
        await halfway.SendRawAsync(DonorTestClient.HeaderOnly(DaemonOpcode.Hello, 1, DaemonHello.Size).AsMemory(0, 8), ct);
        await using var unproven = await donor.ConnectAsync(ct);
        Assert.That((await unproven.SendHelloAsync(new DaemonHello(DaemonFrameHeader.Version, 8), ct)).Status, Is.EqualTo(DaemonStatus.Ok));
        await using var greeted = await donor.HelloAsync(7, ct);
        await TestDonor.WaitForAsync(() => donor.Daemon.ConnectionCount == 4, ct);

        donor.Time.Advance(TimeSpan.FromSeconds(9));
        Assert.That(await greeted.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 64u)));
        Assert.That(donor.Daemon.ConnectionCount, Is.EqualTo(4), "nobody closed before the timeout");

        donor.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(await silent.IsClosedByPeerAsync(ct), Is.True, "no byte sent");
        Assert.That(await halfway.IsClosedByPeerAsync(ct), Is.True, "half a HELLO header sent");
        Assert.That(await unproven.IsClosedByPeerAsync(ct), Is.True, "HELLO answered, but no AUTH");
        await TestDonor.WaitForAsync(() => donor.Daemon.ConnectionCount == 1, ct);
        Assert.That(await greeted.QueryFreeAsync(Slab, ct), Is.EqualTo((DaemonStatus.Ok, 64u)), "a connection past its HELLO has no deadline");
        Assert.That(donor.Log.Entries.Select(e => e.Message), Has.Exactly(3).Contains("no HELLO within"));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_version_1_HELLO_gets_VERSION_and_may_retry(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.ConnectAsync(ct);
        // Version 1's 16-byte body: magic, version, flags, client id.
        var v1 = Convert.FromHexString("53575044" + "0001" + "0001" + "0000000000000007");
        Assert.That((await client.RequestAsync(DaemonOpcode.Hello, v1, ct)).Status, Is.EqualTo(DaemonStatus.Version));
        Assert.That(await client.HelloAsync(7, ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(donor.Daemon.ClientCount, Is.EqualTo(1));
    }

    [Test, CancelAfter(20_000)]
    public async Task Wrong_magic_closes_the_connection(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.ConnectAsync(ct);
        var body = new byte[DaemonHello.Size];
        new DaemonHello(DaemonFrameHeader.Version, 7).Write(body, new byte[DaemonAuthProof.NonceSize]);
        body[0] ^= 0xFF;
        await client.SendAsync(DaemonOpcode.Hello, 1, body, ct);
        Assert.That(await client.IsClosedByPeerAsync(ct), Is.True);
        Assert.That(donor.Log.Entries.Select(e => e.Message), Has.Some.Contains("SWPD magic"));
    }

    [Test, CancelAfter(20_000)]
    public async Task More_client_ids_than_MaxClients_get_LIMIT(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MaxClients = 2);
        await using var a = await donor.HelloAsync(1, ct);
        await using var b = await donor.HelloAsync(2, ct);
        await using var c = await donor.ConnectAsync(ct);
        Assert.That(await c.HelloAsync(3, ct), Is.EqualTo(DaemonStatus.Limit), "refused at AUTH, once the key is proven");
        Assert.That(await c.IsClosedByPeerAsync(ct), Is.True, "the nonce is spent: a new connection starts over");
        await using var d = await donor.ConnectAsync(ct);
        Assert.That(await d.HelloAsync(1, ct), Is.EqualTo(DaemonStatus.Ok), "another connection of a known client is not a new client");
        Assert.That(donor.Daemon.ClientCount, Is.EqualTo(2));
    }

    [Test, CancelAfter(20_000)]
    public async Task Connections_beyond_MaxConnections_are_closed_at_accept(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MaxConnections = 2);
        await using var a = await donor.HelloAsync(1, ct);
        await using var b = await donor.HelloAsync(1, ct);
        await using var c = await donor.ConnectAsync(ct);
        Assert.That(await c.IsClosedByPeerAsync(ct), Is.True);
        Assert.That((await a.QueryFreeAsync(Slab, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
    }

    [Test, CancelAfter(30_000)]
    public async Task Alloc_write_read_trim_roundtrip_commits_and_returns_memory(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.HelloAsync(7, ct);
        var slab = await client.AllocOkAsync(4 * Slab, ct);
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1));
        Assert.That(donor.Daemon.BytesLent, Is.EqualTo(4 * (long)Slab));
        Assert.That(donor.Daemon.BytesCommitted, Is.Zero, "nothing committed before a write");

        var small = DonorTestClient.Pattern(4096, 1);
        var large = DonorTestClient.Pattern(1 << 20, 2); // larger than the connection buffer: chunked both ways
        Assert.That(await client.WriteAsync(slab, 4096, small, ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(await client.WriteAsync(slab, 2 * Slab, large, ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(donor.Daemon.BytesCommitted, Is.EqualTo(4096 + (1 << 20)));

        Assert.That(await client.ReadAsync(slab, 4096, 4096, ct), Is.EqualTo((DaemonStatus.Ok, small)).Using(new ReplyComparer()));
        var whole = await client.ReadAsync(slab, 0, (uint)(4 * Slab), ct);
        Assert.That(whole.Status, Is.EqualTo(DaemonStatus.Ok));
        Assert.That(whole.Data.AsSpan(4096, 4096).ToArray(), Is.EqualTo(small.ToArray()));
        Assert.That(whole.Data.AsSpan((int)(2 * Slab), 1 << 20).ToArray(), Is.EqualTo(large.ToArray()));
        Assert.That(whole.Data.AsSpan(0, 4096).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "never-written pages read as zero");

        Assert.That(await client.TrimAsync(slab, 2 * Slab, 1 << 20, ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(donor.Daemon.BytesCommitted, Is.EqualTo(4096), "trim gives the pages back");
        var trimmed = await client.ReadAsync(slab, 2 * Slab, 1 << 20, ct);
        Assert.That(trimmed.Data.AsSpan().IndexOfAnyExcept((byte)0), Is.EqualTo(-1));

        var stats = await client.StatsAsync(ct);
        Assert.That(stats.BytesLent, Is.EqualTo(4 * Slab));
        Assert.That(stats.SlabsMapped, Is.EqualTo(1));
        Assert.That(stats.MemAvailable, Is.EqualTo((ulong)donor.Memory.Available));
    }

    [Test, CancelAfter(20_000)]
    public async Task Freed_slab_is_stale_and_its_id_comes_back_with_a_new_epoch(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.HelloAsync(7, ct);
        var slab = await client.AllocOkAsync(Slab, ct);
        Assert.That(await client.WriteAsync(slab, 0, DonorTestClient.Pattern(8192, 3), ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(await client.FreeAsync(slab, ct), Is.EqualTo(DaemonStatus.Ok));
        Assert.That(donor.Daemon.BytesCommitted, Is.Zero);
        Assert.That(donor.Daemon.BytesLent, Is.Zero);

        Assert.That((await client.ReadAsync(slab, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Stale));
        Assert.That(await client.WriteAsync(slab, 0, new byte[4096], ct), Is.EqualTo(DaemonStatus.Stale));
        Assert.That(await client.TrimAsync(slab, 0, 4096, ct), Is.EqualTo(DaemonStatus.Stale));
        Assert.That(await client.FreeAsync(slab, ct), Is.EqualTo(DaemonStatus.Stale));

        var again = await client.AllocOkAsync(Slab, ct);
        Assert.That(again.SlabId, Is.EqualTo(slab.SlabId), "ids are reused");
        Assert.That(again.Epoch, Is.Not.EqualTo(slab.Epoch), "with a fresh epoch");
        Assert.That((await client.ReadAsync(slab, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Stale), "the old epoch stays stale");
        var fresh = await client.ReadAsync(again, 0, 8192, ct);
        Assert.That(fresh.Data.AsSpan().IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "a new slab holds nothing of the old one");
    }

    [Test, CancelAfter(20_000)]
    public async Task Another_clients_slab_is_stale(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var owner = await donor.HelloAsync(1, ct);
        await using var other = await donor.HelloAsync(2, ct);
        var slab = await owner.AllocOkAsync(Slab, ct);
        Assert.That((await other.ReadAsync(slab, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Stale));
        Assert.That(await other.FreeAsync(slab, ct), Is.EqualTo(DaemonStatus.Stale));
        Assert.That((await owner.ReadAsync(slab, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
    }

    [Test, CancelAfter(20_000)]
    public async Task Out_of_range_requests_and_bad_sizes_are_INVALID(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.HelloAsync(7, ct);
        var slab = await client.AllocOkAsync(Slab, ct);
        Assert.That((await client.ReadAsync(slab, Slab - 4096, 8192, ct)).Status, Is.EqualTo(DaemonStatus.Invalid));
        Assert.That((await client.ReadAsync(slab, ulong.MaxValue - 100, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Invalid), "offset + length overflows");
        Assert.That((await client.ReadAsync(slab, 0, uint.MaxValue, ct)).Status, Is.EqualTo(DaemonStatus.Invalid));
        Assert.That(await client.WriteAsync(slab, Slab, new byte[1], ct), Is.EqualTo(DaemonStatus.Invalid));
        Assert.That(await client.TrimAsync(slab, ulong.MaxValue, 1, ct), Is.EqualTo(DaemonStatus.Invalid));
        Assert.That(await client.TrimAsync(slab, 0, (uint)Slab, ct), Is.EqualTo(DaemonStatus.Ok), "the whole slab fits");

        foreach (var size in new ulong[] { 0, 4096, 3 << 20, 512 << 10, 32UL << 30, ulong.MaxValue })
        {
            Assert.That((await client.AllocAsync(size, ct)).Status, Is.EqualTo(DaemonStatus.Invalid), $"slab size {size}");
            Assert.That((await client.QueryFreeAsync(size, ct)).Status, Is.EqualTo(DaemonStatus.Invalid), $"slab size {size}");
        }

        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1));
    }

    [Test, CancelAfter(20_000)]
    public async Task Write_whose_payload_disagrees_with_its_range_closes_the_connection(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.HelloAsync(7, ct);
        var slab = await client.AllocOkAsync(Slab, ct);
        var body = new byte[SlabRange.Size + 100];
        new SlabRange(slab.SlabId, slab.Epoch, 0, 4096).Write(body);
        await client.SendAsync(DaemonOpcode.Write, 9, body, ct);
        Assert.That(await client.IsClosedByPeerAsync(ct), Is.True);
        Assert.That(donor.Log.Entries.Select(e => e.Message), Has.Some.Contains("range says 4096"));
    }

    [Test, CancelAfter(20_000)]
    public async Task Framing_violations_close_only_that_connection(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var good = await donor.HelloAsync(1, ct);
        var slab = await good.AllocOkAsync(Slab, ct);
        byte[][] bad =
        [
            DonorTestClient.HeaderOnly((DaemonOpcode)77, 1, 12), // unknown opcode
            DonorTestClient.HeaderOnly(DaemonOpcode.Read, 1, 12 + 4), // body shorter than a range
            DonorTestClient.HeaderOnly(DaemonOpcode.Write, 1, 64 * 1024 * 1024), // beyond the maximum frame
            DonorTestClient.HeaderOnly(DaemonOpcode.Evicted, 1, 12 + 8), // daemon → server only
            DonorTestClient.HeaderOnly(DaemonOpcode.Hello, 1, 4), // length below the header
        ];
        foreach (var frame in bad)
        {
            await using var client = await donor.ConnectAsync(ct);
            await client.SendRawAsync(frame, ct);
            await client.SendRawAsync(new byte[64], ct);
            Assert.That(await client.IsClosedByPeerAsync(ct), Is.True);
        }

        Assert.That((await good.ReadAsync(slab, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
    }

    private sealed class ReplyComparer : IEqualityComparer<(DaemonStatus, byte[])>
    {
        public bool Equals((DaemonStatus, byte[]) x, (DaemonStatus, byte[]) y) => x.Item1 == y.Item1 && x.Item2.AsSpan().SequenceEqual(y.Item2);

        public int GetHashCode((DaemonStatus, byte[]) obj) => obj.Item1.GetHashCode();
    }
}
