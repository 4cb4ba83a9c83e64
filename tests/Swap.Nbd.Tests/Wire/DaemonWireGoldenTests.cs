using NUnit.Framework;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Wire;

/// <summary>Golden bytes for the server ↔ daemon protocol, from docs/daemon-protocol.md.</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class DaemonWireGoldenTests
{
    // The handshake's golden values: key 00..1F, client nonce 20..3F, daemon nonce 40..5F. The proofs were computed
    // independently (Python's hmac module) from the transcripts docs/daemon-protocol.md gives.
    private static readonly byte[] Key = Enumerable.Range(0x00, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] ClientNonce = Enumerable.Range(0x20, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] DaemonNonce = Enumerable.Range(0x40, 32).Select(i => (byte)i).ToArray();
    private const string ClientNonceHex = "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F";
    private const string DaemonNonceHex = "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F";
    private const string DaemonProofHex = "36D97CC792D121DDCDB16165E4C2EFFA14F88693E3D2CA26E832F3CF90A5E179";
    private const string ServerProofHex = "2FDD69C5BEE7EA9808DB93B0BF623AA029647AC2C11ED57863E26C7D1E77A2DE";
    private static readonly DaemonHello GoldenHello = new(2, 0x0102030405060708, DaemonHelloFlags.ReleaseSlabs);
    private static readonly DaemonWelcome GoldenWelcome = new(2, 64, 0x1122334455667788);

    [Test]
    public void Hello_frame_version_2()
    {
        var bytes = new byte[DaemonFrameHeader.Size + DaemonHello.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, 1, DaemonHello.Size).Write(bytes);
        GoldenHello.Write(bytes.AsSpan(DaemonFrameHeader.Size), ClientNonce);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo(
            "0000003C" + "0001" + "0000" + "0000000000000001" +
            "53575044" + "0002" + "0001" + "0102030405060708" + ClientNonceHex));

        Assert.That(DaemonFrameHeader.TryRead(bytes, out var header), Is.True);
        Assert.That(header, Is.EqualTo(new DaemonFrameHeader(60, DaemonOpcode.Hello, DaemonStatus.Ok, 1)));
        Assert.That(header.BodyLength, Is.EqualTo(DaemonHello.Size));
        var nonce = new byte[DaemonAuthProof.NonceSize];
        Assert.That(DaemonHello.Read(bytes.AsSpan(DaemonFrameHeader.Size), nonce), Is.EqualTo(GoldenHello));
        Assert.That(nonce, Is.EqualTo(ClientNonce));
        Assert.That(DaemonHello.ReadVersion(bytes.AsSpan(DaemonFrameHeader.Size)), Is.EqualTo(2));
    }

    [Test]
    public void Hello_flags_are_bit_0_release_slabs_and_bit_1_insecure()
    {
        var bytes = new byte[DaemonHello.Size];
        new DaemonHello(2, 0x0102030405060708, DaemonHelloFlags.ReleaseSlabs | DaemonHelloFlags.InsecureNoAuth).Write(bytes, ClientNonce);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("53575044" + "0002" + "0003" + "0102030405060708" + ClientNonceHex));
        Assert.That(DaemonHello.Read(bytes, new byte[32]).Flags, Is.EqualTo(DaemonHelloFlags.ReleaseSlabs | DaemonHelloFlags.InsecureNoAuth));
    }

    [Test]
    public void A_version_1_hello_reads_as_version_1_and_no_further()
    {
        var v1 = Convert.FromHexString("53575044" + "0001" + "0001" + "0102030405060708");
        Assert.That(DaemonHello.ReadVersion(v1), Is.EqualTo(1));
        Assert.That(() => DaemonHello.Read(v1, new byte[32]), Throws.TypeOf<DaemonProtocolException>().With.Message.Contains("version 2 has 48"));
    }

    [Test]
    public void Welcome_reply_version_2_with_the_daemon_proof()
    {
        var proof = new byte[DaemonAuthProof.Size];
        DaemonAuthProof.DaemonProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, proof);
        Assert.That(Convert.ToHexString(proof), Is.EqualTo(DaemonProofHex));

        var bytes = new byte[DaemonFrameHeader.Size + DaemonWelcome.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, 1, DaemonWelcome.Size).Write(bytes);
        GoldenWelcome.Write(bytes.AsSpan(DaemonFrameHeader.Size), DaemonNonce, proof);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo(
            "0000005C" + "0001" + "0000" + "0000000000000001" +
            "0002" + "0000" + "00000040" + "1122334455667788" + DaemonNonceHex + DaemonProofHex));

        var nonce = new byte[DaemonAuthProof.NonceSize];
        var readProof = new byte[DaemonAuthProof.Size];
        Assert.That(DaemonWelcome.Read(bytes.AsSpan(DaemonFrameHeader.Size), nonce, readProof), Is.EqualTo(GoldenWelcome));
        Assert.That(nonce, Is.EqualTo(DaemonNonce));
        Assert.That(readProof, Is.EqualTo(proof));
        Assert.That(DaemonAuthProof.IsDaemonProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, readProof), Is.True);
    }

    [Test]
    public void Auth_frame_and_its_replies()
    {
        var bytes = new byte[DaemonFrameHeader.Size + DaemonAuthProof.AuthBodySize];
        DaemonFrameHeader.For(DaemonOpcode.Auth, DaemonStatus.Ok, 2, DaemonAuthProof.AuthBodySize).Write(bytes);
        DaemonAuthProof.ServerProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, bytes.AsSpan(DaemonFrameHeader.Size));
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("0000002C" + "000A" + "0000" + "0000000000000002" + ServerProofHex));
        Assert.That(DaemonFrameHeader.TryRead(bytes, out var header), Is.True);
        Assert.That(header, Is.EqualTo(new DaemonFrameHeader(44, DaemonOpcode.Auth, DaemonStatus.Ok, 2)));
        Assert.That(DaemonAuthProof.IsServerProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, bytes.AsSpan(DaemonFrameHeader.Size)), Is.True);

        var ok = new byte[DaemonFrameHeader.Size];
        DaemonFrameHeader.For(DaemonOpcode.Auth, DaemonStatus.Ok, 2, 0).Write(ok);
        Assert.That(Convert.ToHexString(ok), Is.EqualTo("0000000C" + "000A" + "0000" + "0000000000000002"));
        var refused = new byte[DaemonFrameHeader.Size];
        DaemonFrameHeader.For(DaemonOpcode.Auth, DaemonStatus.Unauthorized, 2, 0).Write(refused);
        Assert.That(Convert.ToHexString(refused), Is.EqualTo("0000000C" + "000A" + "0008" + "0000000000000002"));
    }

    [Test]
    public void A_proof_holds_only_for_its_own_key_nonces_ids_flags_and_side()
    {
        var proof = Convert.FromHexString(ServerProofHex);
        var otherKey = (byte[])Key.Clone();
        otherKey[31] ^= 1;
        var otherNonce = (byte[])DaemonNonce.Clone();
        otherNonce[0] ^= 1;
        Assert.That(DaemonAuthProof.IsServerProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, proof), Is.True);
        Assert.That(DaemonAuthProof.IsServerProof(otherKey, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, proof), Is.False, "another key");
        Assert.That(DaemonAuthProof.IsServerProof(Key, ClientNonce, otherNonce, GoldenHello, GoldenWelcome, proof), Is.False, "another daemon nonce: a replay");
        Assert.That(DaemonAuthProof.IsServerProof(Key, ClientNonce, DaemonNonce, GoldenHello with { ClientId = 9 }, GoldenWelcome, proof), Is.False, "another client id");
        Assert.That(DaemonAuthProof.IsServerProof(Key, ClientNonce, DaemonNonce, GoldenHello with { Flags = DaemonHelloFlags.None }, GoldenWelcome, proof), Is.False, "flags changed on the way");
        Assert.That(DaemonAuthProof.IsServerProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome with { DaemonId = 9 }, proof), Is.False, "another daemon");
        Assert.That(DaemonAuthProof.IsDaemonProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, proof), Is.False, "a server proof is no daemon proof");
        Assert.That(DaemonAuthProof.IsServerProof(Key, ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, proof.AsSpan(0, 31)), Is.False, "a short proof");
        Assert.That(() => DaemonAuthProof.ServerProof(new byte[16], ClientNonce, DaemonNonce, GoldenHello, GoldenWelcome, new byte[32]), Throws.ArgumentException);
    }

    [Test]
    public void Truncated_or_oversized_handshake_bodies_are_refused()
    {
        Assert.That(() => DaemonHello.ReadVersion(new byte[7]), Throws.TypeOf<DaemonProtocolException>());
        var hello = new byte[DaemonHello.Size + 1];
        GoldenHello.Write(hello, ClientNonce);
        Assert.That(() => DaemonHello.Read(hello, new byte[32]), Throws.TypeOf<DaemonProtocolException>(), "49 bytes");
        Assert.That(() => DaemonHello.Read(hello.AsSpan(0, 47), new byte[32]), Throws.TypeOf<DaemonProtocolException>(), "47 bytes");
        Assert.That(() => DaemonWelcome.Read(new byte[79], new byte[32], new byte[32]), Throws.TypeOf<DaemonProtocolException>());
        Assert.That(() => DaemonWelcome.Read(new byte[81], new byte[32], new byte[32]), Throws.TypeOf<DaemonProtocolException>());
    }

    [Test]
    public void Write_request_header_and_range()
    {
        var bytes = new byte[DaemonFrameHeader.Size + SlabRange.Size];
        DaemonFrameHeader.For(DaemonOpcode.Write, DaemonStatus.Ok, 0x10, SlabRange.Size + 4096).Write(bytes);
        new SlabRange(7, 3, 0x200000, 4096).Write(bytes.AsSpan(DaemonFrameHeader.Size));
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo(
            "00001020" + "0005" + "0000" + "0000000000000010" +
            "00000007" + "00000003" + "0000000000200000" + "00001000"));
        Assert.That(SlabRange.Read(bytes.AsSpan(DaemonFrameHeader.Size)), Is.EqualTo(new SlabRange(7, 3, 0x200000, 4096)));
    }

    [Test]
    public void Stale_reply_and_eviction_notice()
    {
        var reply = new byte[DaemonFrameHeader.Size];
        DaemonFrameHeader.For(DaemonOpcode.Read, DaemonStatus.Stale, 0x10, 0).Write(reply);
        Assert.That(Convert.ToHexString(reply), Is.EqualTo("0000000C" + "0004" + "0001" + "0000000000000010"));

        var notice = new byte[DaemonFrameHeader.Size + SlabRange.SlabOnlySize];
        DaemonFrameHeader.For(DaemonOpcode.Evicted, DaemonStatus.Ok, 0, SlabRange.SlabOnlySize).Write(notice);
        new SlabRange(9, 2, 0, 0).WriteSlabOnly(notice.AsSpan(DaemonFrameHeader.Size));
        Assert.That(Convert.ToHexString(notice), Is.EqualTo("00000014" + "0009" + "0000" + "0000000000000000" + "00000009" + "00000002"));
        Assert.That(SlabRange.ReadSlabOnly(notice.AsSpan(DaemonFrameHeader.Size)), Is.EqualTo(new SlabRange(9, 2, 0, 0)));
    }

    [Test]
    public void Alloc_slab_request_and_grant()
    {
        var request = new byte[SlabAllocRequest.Size];
        new SlabAllocRequest(1UL << 30, 5).Write(request);
        Assert.That(Convert.ToHexString(request), Is.EqualTo("0000000040000000" + "00000005"));
        Assert.That(SlabAllocRequest.Read(request), Is.EqualTo(new SlabAllocRequest(1UL << 30, 5)));

        var grant = new byte[SlabGrant.Size];
        new SlabGrant(0x11, 0x22).Write(grant);
        Assert.That(Convert.ToHexString(grant), Is.EqualTo("00000011" + "00000022"));
        Assert.That(SlabGrant.Read(grant), Is.EqualTo(new SlabGrant(0x11, 0x22)));
        Assert.That(() => SlabAllocRequest.Read(new byte[11]), Throws.TypeOf<DaemonProtocolException>());
        Assert.That(() => SlabGrant.Read(new byte[7]), Throws.TypeOf<DaemonProtocolException>());
    }

    [Test]
    public void Stats_and_free_slabs_replies()
    {
        var stats = new byte[DaemonStats.Size];
        new DaemonStats(0x0102, 0x0304, 5, 6).Write(stats);
        Assert.That(Convert.ToHexString(stats), Is.EqualTo("0000000000000102" + "0000000000000304" + "00000005" + "00000006"));
        Assert.That(DaemonStats.Read(stats), Is.EqualTo(new DaemonStats(0x0102, 0x0304, 5, 6)));

        var free = new byte[DaemonStats.FreeSlabsSize];
        DaemonStats.WriteFreeSlabs(free, 9);
        Assert.That(Convert.ToHexString(free), Is.EqualTo("00000009"));
        Assert.That(DaemonStats.ReadFreeSlabs(free), Is.EqualTo(9u));
        Assert.That(() => DaemonStats.Read(new byte[23]), Throws.TypeOf<DaemonProtocolException>());
        Assert.That(() => DaemonStats.ReadFreeSlabs(new byte[3]), Throws.TypeOf<DaemonProtocolException>());
    }

    [TestCase("0000000C" + "0000" + "0000" + "0000000000000001", TestName = "opcode 0")]
    [TestCase("0000000C" + "000B" + "0000" + "0000000000000001", TestName = "opcode 11")]
    [TestCase("0000000B" + "0001" + "0000" + "0000000000000001", TestName = "length shorter than the header")]
    [TestCase("02000025" + "0005" + "0000" + "0000000000000001", TestName = "length beyond 32 MiB of payload")]
    public void Impossible_frames_are_protocol_errors(string hex)
    {
        Assert.That(() => DaemonFrameHeader.TryRead(Convert.FromHexString(hex), out _), Throws.TypeOf<DaemonProtocolException>());
    }

    [Test]
    public void Short_input_needs_more_bytes_and_short_bodies_are_refused()
    {
        Assert.That(DaemonFrameHeader.TryRead(new byte[15], out _), Is.False);
        Assert.That(() => SlabRange.Read(new byte[19]), Throws.TypeOf<DaemonProtocolException>());
        Assert.That(() => DaemonHello.Read(new byte[DaemonHello.Size], new byte[32]), Throws.TypeOf<DaemonProtocolException>(), "zero magic");
    }

    [TestCase(0UL, 4096u, 1UL << 20, true)]
    [TestCase((1UL << 20) - 4096, 4096u, 1UL << 20, true)]
    [TestCase((1UL << 20) - 4095, 4096u, 1UL << 20, false)]
    [TestCase(ulong.MaxValue - 10, 4096u, 1UL << 20, false)]
    public void Ranges_are_checked_against_the_slab_without_overflow(ulong offset, uint length, ulong slabSize, bool fits)
    {
        Assert.That(new SlabRange(1, 1, offset, length).FitsIn(slabSize), Is.EqualTo(fits));
    }

    [Test]
    public void Random_headers_either_parse_within_bounds_or_throw_the_protocol_exception()
    {
        var rng = new Random(42);
        var bytes = new byte[DaemonFrameHeader.Size];
        for (var i = 0; i < 10_000; i++)
        {
            rng.NextBytes(bytes);
            try
            {
                if (DaemonFrameHeader.TryRead(bytes, out var header))
                {
                    Assert.That(header.BodyLength, Is.InRange(0, 24 + DaemonFrameHeader.MaxPayload));
                }
            }
            catch (DaemonProtocolException)
            {
                // Refused cleanly.
            }
        }
    }

    [Test]
    public void Query_free_request()
    {
        var bytes = new byte[DaemonFrameHeader.Size + SlabQuery.Size];
        DaemonFrameHeader.For(DaemonOpcode.QueryFree, DaemonStatus.Ok, 2, SlabQuery.Size).Write(bytes);
        new SlabQuery(1UL << 30).Write(bytes.AsSpan(DaemonFrameHeader.Size));
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo(
            "00000014" + "0002" + "0000" + "0000000000000002" +
            "0000000040000000"));
        Assert.That(SlabQuery.Read(bytes.AsSpan(DaemonFrameHeader.Size)), Is.EqualTo(new SlabQuery(1UL << 30)));
        Assert.Throws<DaemonProtocolException>(() => SlabQuery.Read(new byte[7]));
    }
}
