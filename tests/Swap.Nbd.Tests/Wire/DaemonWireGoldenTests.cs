using NUnit.Framework;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Wire;

/// <summary>Golden bytes for the server ↔ daemon protocol, from docs/daemon-protocol.md.</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class DaemonWireGoldenTests
{
    [Test]
    public void Hello_frame()
    {
        var bytes = new byte[DaemonFrameHeader.Size + DaemonHello.Size];
        DaemonFrameHeader.For(DaemonOpcode.Hello, DaemonStatus.Ok, 1, DaemonHello.Size).Write(bytes);
        new DaemonHello(DaemonFrameHeader.Version, 0x0102030405060708).Write(bytes.AsSpan(DaemonFrameHeader.Size));
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo(
            "0000001C" + "0001" + "0000" + "0000000000000001" +
            "53575044" + "0001" + "0000" + "0102030405060708"));

        Assert.That(DaemonFrameHeader.TryRead(bytes, out var header), Is.True);
        Assert.That(header, Is.EqualTo(new DaemonFrameHeader(28, DaemonOpcode.Hello, DaemonStatus.Ok, 1)));
        Assert.That(header.BodyLength, Is.EqualTo(DaemonHello.Size));
        Assert.That(DaemonHello.Read(bytes.AsSpan(DaemonFrameHeader.Size)), Is.EqualTo(new DaemonHello(1, 0x0102030405060708)));
    }

    [Test]
    public void Hello_that_releases_earlier_slabs_sets_flag_bit_0()
    {
        var bytes = new byte[DaemonHello.Size];
        new DaemonHello(1, 0x0102030405060708, DaemonHelloFlags.ReleaseSlabs).Write(bytes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("53575044" + "0001" + "0001" + "0102030405060708"));
        Assert.That(DaemonHello.Read(bytes), Is.EqualTo(new DaemonHello(1, 0x0102030405060708, DaemonHelloFlags.ReleaseSlabs)));
    }

    [Test]
    public void Welcome_reply()
    {
        var bytes = new byte[DaemonWelcome.Size];
        new DaemonWelcome(1, 12, 0xAABB).Write(bytes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("0001" + "0000" + "0000000C" + "000000000000AABB"));
        Assert.That(DaemonWelcome.Read(bytes), Is.EqualTo(new DaemonWelcome(1, 12, 0xAABB)));
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
    [TestCase("0000000C" + "000A" + "0000" + "0000000000000001", TestName = "opcode 10")]
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
        Assert.That(() => DaemonHello.Read(new byte[16]), Throws.TypeOf<DaemonProtocolException>(), "zero magic");
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
