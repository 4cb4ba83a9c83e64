using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using Swap.Common.Security;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Security;

/// <summary>
/// The daemon serves only servers that prove the cluster key, and a server talks only to daemons that prove it:
/// strangers, other clusters' keys, replayed handshakes, out-of-order and malformed handshake frames (the server's
/// side: <see cref="ServerAuthTests"/>). Each is refused, logged naming the peer, and disturbs nothing else: a victim
/// server's page stays intact and readable throughout.
/// </summary>
[Category(Tier.Integration)]
public sealed class DonorAuthTests
{
    private const ulong Slab = TestDonor.Slab;
    private const ulong Victim = 7;

    private static readonly DaemonOpcode[] DataRequests =
        [DaemonOpcode.QueryFree, DaemonOpcode.AllocSlab, DaemonOpcode.Read, DaemonOpcode.Write, DaemonOpcode.Trim, DaemonOpcode.FreeSlab, DaemonOpcode.Stats];

    [Test, CancelAfter(30_000)]
    public async Task Strangers_without_the_key_or_with_another_get_no_usable_welcome_and_touch_nothing(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var victim = await donor.HelloAsync(Victim, ct);
        var slab = await victim.AllocOkAsync(Slab, ct);
        var page = DonorTestClient.Pattern(4096, 11);
        Assert.That(await victim.WriteAsync(slab, 8192, page, ct), Is.EqualTo(DaemonStatus.Ok));

        // No key: refused at HELLO, no welcome at all.
        await using (var stranger = await donor.ConnectAsync(ct))
        {
            Assert.That(await stranger.HelloAsync(Victim, ct, flags: DaemonHelloFlags.ReleaseSlabs, insecure: true), Is.EqualTo(DaemonStatus.Unauthorized));
            Assert.That(await stranger.IsClosedByPeerAsync(ct), Is.True);
        }

        // Another cluster's key: a welcome whose proof does not check out under that key, and AUTH refused.
        var otherKey = ClusterKeyFile.Load(TestKeys.NewKeyFile("other-cluster.key"));
        await using (var stranger = await donor.ConnectAsync(ct))
        {
            var hello = new DaemonHello(DaemonFrameHeader.Version, Victim, DaemonHelloFlags.ReleaseSlabs);
            var welcome = await stranger.SendHelloAsync(hello, ct);
            Assert.That(welcome.Status, Is.EqualTo(DaemonStatus.Ok));
            Assert.That(DaemonAuthProof.IsDaemonProof(otherKey.AsSpan(), welcome.ClientNonce, welcome.DaemonNonce, hello, welcome.Welcome, welcome.DaemonProof), Is.False,
                "the stranger cannot take the welcome for its own cluster's daemon");
            var proof = new byte[DaemonAuthProof.Size];
            DaemonAuthProof.ServerProof(otherKey.AsSpan(), welcome.ClientNonce, welcome.DaemonNonce, hello, welcome.Welcome, proof);
            Assert.That(await stranger.AuthAsync(proof, ct), Is.EqualTo(DaemonStatus.Unauthorized));
            Assert.That(await stranger.IsClosedByPeerAsync(ct), Is.True);
        }

        // Every data request, before any HELLO and between HELLO and AUTH: refused, connection closed.
        foreach (var helloFirst in new[] { false, true })
        {
            foreach (var opcode in DataRequests)
            {
                await using var stranger = await donor.ConnectAsync(ct);
                if (helloFirst)
                {
                    Assert.That((await stranger.SendHelloAsync(new DaemonHello(DaemonFrameHeader.Version, Victim), ct)).Status, Is.EqualTo(DaemonStatus.Ok));
                }

                Assert.That((await stranger.RequestAsync(opcode, RequestBody(opcode, slab), ct)).Status, Is.EqualTo(DaemonStatus.HelloFirst), $"{opcode}");
                Assert.That(await stranger.IsClosedByPeerAsync(ct), Is.True, $"{opcode}");
            }
        }

        var read = await victim.ReadAsync(slab, 8192, 4096, ct);
        Assert.That(read.Status, Is.EqualTo(DaemonStatus.Ok));
        Assert.That(read.Data, Is.EqualTo(page), "the victim's page is intact and readable");
        Assert.That((donor.Daemon.SlabCount, donor.Daemon.ClientCount, donor.Daemon.BytesCommitted), Is.EqualTo((1, 1, 4096L)),
            "nothing freed, written or registered by the strangers");
        var refusals = Refusals(donor);
        Assert.That(refusals, Has.Count.EqualTo(2 + (2 * DataRequests.Length)));
        Assert.That(refusals, Has.All.Contains("from 127.0.0.1:"), "each refusal names the peer");
        Assert.That(refusals, Has.Exactly(1).Contains("runs without authentication"));
        Assert.That(refusals, Has.Exactly(1).Contains("failed to prove the cluster key"));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_handshake_replayed_from_the_wire_gets_nothing_and_frees_nothing(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        using var tap = new TapProxy(donor.Daemon.EndPoints[0]);
        var settings = new DaemonLinkSettings { AuthKey = TestKeys.Cluster };
        using var link = await DaemonLink.ConnectAsync(tap.EndPoint, Victim, settings, TimeProvider.System, NullLogger.Instance, ct);
        var grant = (await link.AllocSlabAsync((long)Slab, 0)).Grant;
        var page = DonorTestClient.Pattern(4096, 12);
        Assert.That((await link.WriteAsync(grant, 0, page)).Status, Is.EqualTo(DaemonStatus.Ok));

        // The server's HELLO (which asks to release its slabs) and AUTH, exactly as they crossed the wire.
        var recorded = tap.Upstream().AsMemory(0, DaemonFrameHeader.Size + DaemonHello.Size + DaemonFrameHeader.Size + DaemonAuthProof.AuthBodySize);
        await using (var replay = await donor.ConnectAsync(ct))
        {
            await replay.SendRawAsync(recorded, ct);
            var (helloReply, _) = await replay.ReceiveAsync(ct);
            Assert.That(helloReply.Status, Is.EqualTo(DaemonStatus.Ok), "a fresh nonce in the welcome");
            var (authReply, _) = await replay.ReceiveAsync(ct);
            Assert.That((authReply.Opcode, authReply.Status), Is.EqualTo((DaemonOpcode.Auth, DaemonStatus.Unauthorized)), "the recorded proof was for another nonce");
            Assert.That(await replay.IsClosedByPeerAsync(ct), Is.True);
        }

        var back = new byte[4096];
        Assert.That((await link.ReadAsync(grant, 0, back)).Status, Is.EqualTo(DaemonStatus.Ok), "the replayed RELEASE_SLABS freed nothing");
        Assert.That(back, Is.EqualTo(page));
        Assert.That(link.IsAlive, Is.True);
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1));
        Assert.That(Refusals(donor), Has.Exactly(1).Contains("replayed handshake"));
    }

    [Test, CancelAfter(30_000)]
    public async Task Truncated_oversized_or_misplaced_handshake_frames_close_only_their_connection(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var victim = await donor.HelloAsync(Victim, ct);
        var slab = await victim.AllocOkAsync(Slab, ct);
        var page = DonorTestClient.Pattern(4096, 13);
        Assert.That(await victim.WriteAsync(slab, 0, page, ct), Is.EqualTo(DaemonStatus.Ok));

        var hello = new byte[DaemonHello.Size + 1];
        new DaemonHello(DaemonFrameHeader.Version, Victim, DaemonHelloFlags.ReleaseSlabs).Write(hello, new byte[DaemonAuthProof.NonceSize]);
        (string What, bool HelloFirst, DaemonOpcode Opcode, byte[] Body)[] cases =
        [
            ("HELLO of 4 bytes", false, DaemonOpcode.Hello, hello[..4]),
            ("HELLO of 47 bytes", false, DaemonOpcode.Hello, hello[..47]),
            ("HELLO of 49 bytes", false, DaemonOpcode.Hello, hello),
            ("AUTH of 31 bytes", true, DaemonOpcode.Auth, new byte[31]),
            ("AUTH of 33 bytes", true, DaemonOpcode.Auth, new byte[33]),
            ("HELLO after HELLO", true, DaemonOpcode.Hello, hello[..48]),
        ];
        foreach (var (what, helloFirst, opcode, body) in cases)
        {
            await using var client = await donor.ConnectAsync(ct);
            if (helloFirst)
            {
                Assert.That((await client.SendHelloAsync(new DaemonHello(DaemonFrameHeader.Version, Victim), ct)).Status, Is.EqualTo(DaemonStatus.Ok));
            }

            await client.SendAsync(opcode, 5, body, ct);
            Assert.That(await client.IsClosedByPeerAsync(ct), Is.True, what);
        }

        await using (var early = await donor.ConnectAsync(ct))
        {
            Assert.That((await early.RequestAsync(DaemonOpcode.Auth, new byte[DaemonAuthProof.AuthBodySize], ct)).Status, Is.EqualTo(DaemonStatus.HelloFirst), "AUTH before HELLO");
            Assert.That(await early.IsClosedByPeerAsync(ct), Is.True);
        }

        Assert.That((await victim.ReadAsync(slab, 0, 4096, ct)).Data, Is.EqualTo(page));
        Assert.That(donor.Daemon.SlabCount, Is.EqualTo(1), "no HELLO's RELEASE_SLABS was acted on");
        var violations = donor.Log.Entries.Where(e => e.EventId.Id == 4).Select(e => e.Message).ToList();
        Assert.That(violations, Has.Some.Contains("version 2 has 48"));
        Assert.That(violations, Has.Some.Contains("AUTH body of 33 bytes"));
        Assert.That(violations, Has.Some.Contains("Auth body of 31 bytes"));
        Assert.That(violations, Has.Some.Contains("a second HELLO"));
        Assert.That(Refusals(donor), Has.Exactly(1).Contains("AUTH before HELLO"));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_key_on_one_side_only_is_refused_by_both(CancellationToken ct)
    {
        await using (var keyed = new TestDonor())
        {
            await using var insecureServer = await keyed.ConnectAsync(ct);
            Assert.That(await insecureServer.HelloAsync(1, ct, insecure: true), Is.EqualTo(DaemonStatus.Unauthorized));
            var link = DaemonLink.ConnectAsync(keyed.Daemon.EndPoints[0], 2, new DaemonLinkSettings { InsecureNoAuth = true }, TimeProvider.System, NullLogger.Instance, ct);
            Assert.That(async () => await link, Throws.TypeOf<DaemonAuthException>().With.Message.Contains("requires the cluster key; give this server --auth-key-file"));
            Assert.That(Refusals(keyed), Has.Exactly(2).Contains("runs without authentication (--insecure-no-auth)"));
        }

        await using var open = new TestDonor(o =>
        {
            o.AuthKeyFile = null;
            o.InsecureNoAuth = true;
        });
        Assert.That(open.Log.Entries.Select(e => e.EventId.Id), Has.Member(EventIds.DonorInsecure), "the daemon warns at start");
        await using (var keyedServer = await open.ConnectAsync(ct))
        {
            Assert.That((await keyedServer.SendHelloAsync(new DaemonHello(DaemonFrameHeader.Version, 3), ct)).Status, Is.EqualTo(DaemonStatus.Unauthorized));
            Assert.That(await keyedServer.IsClosedByPeerAsync(ct), Is.True);
        }

        var keyedLink = DaemonLink.ConnectAsync(open.Daemon.EndPoints[0], 4, new DaemonLinkSettings { AuthKey = TestKeys.Cluster }, TimeProvider.System, NullLogger.Instance, ct);
        Assert.That(async () => await keyedLink, Throws.TypeOf<DaemonAuthException>().With.Message.Contains("runs without authentication (--insecure-no-auth); give it --auth-key-file"));
        Assert.That(Refusals(open), Has.Exactly(2).Contains("this daemon runs with --insecure-no-auth"));

        // Insecure on both sides: the zero proofs are not checked and the daemon serves.
        await using var insecure = await open.ConnectAsync(ct);
        Assert.That(await insecure.HelloAsync(5, ct, insecure: true), Is.EqualTo(DaemonStatus.Ok));
        Assert.That((await insecure.QueryFreeAsync(Slab, ct)).Status, Is.EqualTo(DaemonStatus.Ok));
        using var insecureLink = await DaemonLink.ConnectAsync(open.Daemon.EndPoints[0], 6, new DaemonLinkSettings { InsecureNoAuth = true }, TimeProvider.System, NullLogger.Instance, ct);
        Assert.That((await insecureLink.AllocSlabAsync((long)Slab, 0)).Status, Is.EqualTo(DaemonStatus.Ok));
    }

    private static List<string> Refusals(TestDonor donor) =>
        donor.Log.Entries.Where(e => e.EventId.Id == EventIds.HandshakeRefused).Select(e => e.Message).ToList();

    private static byte[] RequestBody(DaemonOpcode opcode, SlabGrant slab)
    {
        switch (opcode)
        {
            case DaemonOpcode.QueryFree:
            {
                var body = new byte[SlabQuery.Size];
                new SlabQuery(Slab).Write(body);
                return body;
            }

            case DaemonOpcode.AllocSlab:
            {
                var body = new byte[SlabAllocRequest.Size];
                new SlabAllocRequest(Slab, 0).Write(body);
                return body;
            }

            case DaemonOpcode.Write:
            {
                var body = new byte[SlabRange.Size + 4096];
                new SlabRange(slab.SlabId, slab.Epoch, 8192, 4096).Write(body);
                Array.Fill(body, (byte)0xEE, SlabRange.Size, 4096);
                return body;
            }

            case DaemonOpcode.FreeSlab:
            {
                var body = new byte[SlabRange.SlabOnlySize];
                new SlabRange(slab.SlabId, slab.Epoch, 0, 0).WriteSlabOnly(body);
                return body;
            }

            case DaemonOpcode.Stats:
                return [];

            default:
            {
                var body = new byte[SlabRange.Size];
                new SlabRange(slab.SlabId, slab.Epoch, 8192, 4096).Write(body);
                return body;
            }
        }
    }
}
