using NUnit.Framework;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Protocol;

/// <summary>Golden bytes for requests and replies of the transmission phase.</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class TransmissionGoldenTests
{
    // What the kernel sends for a 4 KiB FUA write at 1 MiB with cookie 0x0000000100000007.
    private const string WriteRequest = "25609513" + "0001" + "0001" + "0000000100000007" + "0000000000100000" + "00001000";

    [Test]
    public void Request_write_layout()
    {
        var bytes = new byte[NbdRequest.Size];
        new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, 0x0000000100000007, 0x100000, 4096).Write(bytes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo(WriteRequest));
    }

    [Test]
    public void Request_parses_every_field()
    {
        Assert.That(NbdRequest.TryRead(Convert.FromHexString(WriteRequest), out var request), Is.True);
        Assert.That(request, Is.EqualTo(new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, 0x0000000100000007, 0x100000, 4096)));
        Assert.That(NbdRequest.TryRead(Convert.FromHexString(WriteRequest)[..27], out _), Is.False);
    }

    [Test]
    public void Disconnect_request_is_all_zero_but_magic_and_type()
    {
        var bytes = new byte[NbdRequest.Size];
        new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0).Write(bytes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("25609513" + "0000" + "0002" + new string('0', 40)));
    }

    [Test]
    public void Request_with_bad_magic_is_a_protocol_error()
    {
        var bytes = Convert.FromHexString("25609514" + WriteRequest[8..]);
        Assert.That(() => NbdRequest.TryRead(bytes, out _), Throws.TypeOf<NbdProtocolException>());
    }

    [Test]
    public void Simple_reply_layout()
    {
        var bytes = new byte[NbdSimpleReply.Size];
        new NbdSimpleReply(NbdError.Inval, 0xDEADBEEF00000001).Write(bytes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("67446698" + "00000016" + "DEADBEEF00000001"));
        Assert.That(NbdSimpleReply.Read(bytes), Is.EqualTo(new NbdSimpleReply(NbdError.Inval, 0xDEADBEEF00000001)));
    }

    [Test]
    public void Structured_offset_data_prefix_layout()
    {
        var bytes = new byte[NbdStructuredReply.OffsetDataPrefixSize];
        NbdStructuredReply.WriteOffsetDataPrefix(bytes, NbdReplyFlags.Done, 5, 0x2000, 512);
        Assert.That(Convert.ToHexString(bytes),
            Is.EqualTo("668E33EF" + "0001" + "0001" + "0000000000000005" + "00000208" + "0000000000002000"));
        Assert.That(NbdStructuredReply.Read(bytes), Is.EqualTo(new NbdStructuredReply(NbdReplyFlags.Done, NbdReplyChunkType.OffsetData, 5, 0x208)));
    }

    [Test]
    public void Structured_error_chunk_layout()
    {
        var bytes = new byte[NbdStructuredReply.ErrorSize];
        NbdStructuredReply.WriteError(bytes, 9, NbdError.Io);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("668E33EF" + "0001" + "8001" + "0000000000000009" + "00000006" + "00000005" + "0000"));
    }

    [Test]
    public void Structured_none_chunk_layout()
    {
        var bytes = new byte[NbdStructuredReply.Size];
        new NbdStructuredReply(NbdReplyFlags.Done, NbdReplyChunkType.None, 3, 0).Write(bytes);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("668E33EF" + "0001" + "0000" + "0000000000000003" + "00000000"));
    }

    [Test]
    public void Block_status_chunk_layout()
    {
        var bytes = new byte[NbdStructuredReply.BlockStatusPrefixSize + 16];
        NbdStructuredReply.WriteBlockStatusPrefix(bytes, 4, 1, 2);
        NbdStructuredReply.WriteExtent(bytes.AsSpan(24), 4096, NbdAllocationState.Data);
        NbdStructuredReply.WriteExtent(bytes.AsSpan(32), 8192, NbdAllocationState.Hole | NbdAllocationState.Zero);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo(
            "668E33EF" + "0001" + "0005" + "0000000000000004" + "00000014" + "00000001" +
            "00001000" + "00000000" + "00002000" + "00000003"));
    }

    [Test]
    public void Constants_match_the_spec_not_nbd_h()
    {
        Assert.Multiple(() =>
        {
            Assert.That((ushort)NbdReplyChunkType.BlockStatus, Is.EqualTo(5));
            Assert.That((uint)NbdError.Shutdown, Is.EqualTo(108));
            Assert.That((uint)NbdError.Overflow, Is.EqualTo(75));
            Assert.That((ushort)NbdTransmissionFlags.SendFastZero, Is.EqualTo(0x800));
            Assert.That((ushort)NbdTransmissionFlags.CanMultiConn, Is.EqualTo(0x100));
            Assert.That((ushort)NbdCommandFlags.FastZero, Is.EqualTo(0x10));
        });
    }
}
