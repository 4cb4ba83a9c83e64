using NUnit.Framework;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Protocol;

/// <summary>Golden bytes for the fixed-newstyle handshake, written out by hand from doc/proto.md.</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class HandshakeGoldenTests
{
    [Test]
    public void Greeting_is_NBDMAGIC_IHAVEOPT_and_flags()
    {
        var bytes = new byte[NbdHandshake.GreetingSize];
        NbdHandshake.WriteGreeting(bytes, NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("4E42444D41474943" + "49484156454F5054" + "0003"));

        Assert.That(NbdHandshake.TryReadGreeting(bytes, out var flags), Is.True);
        Assert.That(flags, Is.EqualTo(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes));
        Assert.That(NbdHandshake.TryReadGreeting(bytes.AsSpan(0, 17), out _), Is.False);
    }

    [Test]
    public void Greeting_without_IHAVEOPT_is_a_protocol_error()
    {
        var oldstyle = Convert.FromHexString("4E42444D41474943" + "0000420281861253" + "0000");
        Assert.That(() => NbdHandshake.TryReadGreeting(oldstyle, out _), Throws.TypeOf<NbdProtocolException>());
    }

    [Test]
    public void Client_flags_are_a_big_endian_u32()
    {
        var bytes = new byte[4];
        NbdHandshake.WriteClientFlags(bytes, NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("00000003"));
        Assert.That(NbdHandshake.TryReadClientFlags(Convert.FromHexString("00000001"), out var flags), Is.True);
        Assert.That(flags, Is.EqualTo(NbdClientFlags.FixedNewstyle));
    }

    [TestCase(true, "0000000040000000" + "0105")]
    [TestCase(false, "0000000040000000" + "0105")]
    public void Export_name_reply_has_124_zero_bytes_unless_no_zeroes(bool noZeroes, string head)
    {
        var bytes = new byte[134];
        bytes.AsSpan().Fill(0xEE);
        var n = NbdHandshake.WriteExportNameReply(bytes, 1UL << 30,
            NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.CanMultiConn, noZeroes);
        Assert.That(n, Is.EqualTo(noZeroes ? 10 : 134));
        Assert.That(Convert.ToHexString(bytes, 0, 10), Is.EqualTo(head));
        if (!noZeroes)
        {
            Assert.That(bytes.AsSpan(10, 124).ToArray(), Is.All.EqualTo(0));
        }

        Assert.That(NbdHandshake.TryReadExportNameReply(bytes, out var size, out var flags), Is.True);
        Assert.That((size, flags), Is.EqualTo((1UL << 30, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.CanMultiConn)));
    }
}
