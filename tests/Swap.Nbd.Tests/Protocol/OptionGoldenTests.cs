using NUnit.Framework;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Protocol;

/// <summary>Golden bytes for option requests, option replies and NBD_INFO payloads.</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class OptionGoldenTests
{
    [Test]
    public void Option_header_is_IHAVEOPT_option_length()
    {
        var bytes = new byte[16];
        NbdOptionCodec.WriteHeader(bytes, NbdOption.Go, 0x0a);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("49484156454F5054" + "00000007" + "0000000A"));
        Assert.That(NbdOptionCodec.TryReadHeader(bytes, out var header), Is.True);
        Assert.That(header, Is.EqualTo(new NbdOptionHeader(NbdOption.Go, 10)));
    }

    [Test]
    public void Option_header_with_bad_magic_is_a_protocol_error()
    {
        var bytes = Convert.FromHexString("49484156454F5055" + "00000007" + "00000000");
        Assert.That(() => NbdOptionCodec.TryReadHeader(bytes, out _), Throws.TypeOf<NbdProtocolException>());
    }

    [Test]
    public void Option_reply_header_layout()
    {
        var bytes = new byte[20];
        NbdOptionCodec.WriteReplyHeader(bytes, NbdOption.List, NbdOptionReplyType.ErrUnsup, 3);
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("0003E889045565A9" + "00000003" + "80000001" + "00000003"));
        Assert.That(NbdOptionCodec.TryReadReplyHeader(bytes, out var header), Is.True);
        Assert.That(header.IsError, Is.True);
        Assert.That(header, Is.EqualTo(new NbdOptionReplyHeader(NbdOption.List, NbdOptionReplyType.ErrUnsup, 3)));
    }

    [Test]
    public void Info_export_payload()
    {
        var bytes = new byte[12];
        Assert.That(NbdOptionCodec.WriteInfoExport(bytes, 0x0000001000000000, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendTrim), Is.EqualTo(12));
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("0000" + "0000001000000000" + "0021"));
    }

    [Test]
    public void Info_block_size_payload()
    {
        var bytes = new byte[14];
        Assert.That(NbdOptionCodec.WriteInfoBlockSize(bytes, 1, 4096, 32 << 20), Is.EqualTo(14));
        Assert.That(Convert.ToHexString(bytes), Is.EqualTo("0003" + "00000001" + "00001000" + "02000000"));
    }

    [Test]
    public void Info_name_and_description_payloads()
    {
        var bytes = new byte[16];
        var n = NbdOptionCodec.WriteInfoString(bytes, NbdInfoType.Name, "swap");
        Assert.That(Convert.ToHexString(bytes, 0, n), Is.EqualTo("0001" + "73776170"));
        n = NbdOptionCodec.WriteInfoString(bytes, NbdInfoType.Description, "d");
        Assert.That(Convert.ToHexString(bytes, 0, n), Is.EqualTo("0002" + "64"));
    }

    [Test]
    public void Go_request_round_trips_and_lists_infos()
    {
        var bytes = new byte[64];
        var n = NbdOptionCodec.WriteInfoRequest(bytes, "ab", [NbdInfoType.Name, NbdInfoType.BlockSize]);
        Assert.That(Convert.ToHexString(bytes, 0, n), Is.EqualTo("00000002" + "6162" + "0002" + "0001" + "0003"));
        Assert.That(NbdOptionCodec.TryParseInfoRequest(bytes.AsSpan(0, n), out var name, out var infos), Is.True);
        Assert.That(name, Is.EqualTo("ab"));
        Assert.That(infos, Is.EqualTo(new NbdInfoRequests(Name: true, Description: false, BlockSize: true)));
    }

    [Test]
    public void Go_request_as_nbd_client_sends_it_empty_name_no_infos()
    {
        Assert.That(NbdOptionCodec.TryParseInfoRequest(Convert.FromHexString("00000000" + "0000"), out var name, out var infos), Is.True);
        Assert.That(name, Is.Empty);
        Assert.That(infos, Is.EqualTo(default(NbdInfoRequests)));
    }

    [TestCase("00000005" + "6162" + "0000", TestName = "name longer than the data")]
    [TestCase("00000000" + "0002" + "0001", TestName = "fewer infos than counted")]
    [TestCase("00000000" + "0000" + "00", TestName = "trailing byte")]
    [TestCase("000000", TestName = "too short")]
    [TestCase("00000002" + "6100" + "0000", TestName = "NUL in name")]
    [TestCase("00000001" + "FF" + "0000", TestName = "invalid UTF-8")]
    public void Malformed_go_requests_are_rejected(string hex)
    {
        Assert.That(NbdOptionCodec.TryParseInfoRequest(Convert.FromHexString(hex), out _, out _), Is.False);
    }

    [Test]
    public void Meta_context_request_round_trips()
    {
        var bytes = new byte[128];
        var n = NbdOptionCodec.WriteMetaContextRequest(bytes, "", ["base:allocation"]);
        Assert.That(Convert.ToHexString(bytes, 0, n), Is.EqualTo("00000000" + "00000001" + "0000000F" + Convert.ToHexString("base:allocation"u8)));
        Assert.That(NbdOptionCodec.TryParseMetaContextRequest(bytes.AsSpan(0, n), out var name, out var queries), Is.True);
        Assert.That(name, Is.Empty);
        Assert.That(queries, Is.EqualTo(new[] { "base:allocation" }));
        Assert.That(NbdOptionCodec.TryParseMetaContextRequest(bytes.AsSpan(0, n - 1), out _, out _), Is.False);
        Assert.That(NbdOptionCodec.TryParseMetaContextRequest(Convert.FromHexString("00000000" + "00000002" + "00000001" + "61"), out _, out _), Is.False);
    }

    [Test]
    public void Meta_context_reply_and_server_entry_payloads()
    {
        var bytes = new byte[64];
        var n = NbdOptionCodec.WriteMetaContext(bytes, 1, "base:allocation");
        Assert.That(Convert.ToHexString(bytes, 0, n), Is.EqualTo("00000001" + Convert.ToHexString("base:allocation"u8)));
        n = NbdOptionCodec.WriteServerEntry(bytes, "swap", "x");
        Assert.That(Convert.ToHexString(bytes, 0, n), Is.EqualTo("00000004" + "73776170" + "78"));
    }
}
