using NUnit.Framework;
using Swap.Nbd.Client.Netlink;

namespace Swap.Nbd.Tests.Protocol;

/// <summary>
/// Golden bytes for the generic netlink messages swapnbd-client exchanges with the kernel (x86-64: host order is
/// little-endian), laid out by hand from linux/netlink.h, linux/genetlink.h and linux/nbd-netlink.h.
/// </summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class NetlinkGoldenTests
{
    private const ushort Family = 0x1a;

    [Test]
    public void Get_family_asks_the_controller_for_nbd()
    {
        var buffer = new byte[64];
        var n = NbdNetlinkCodec.WriteGetFamily(buffer, 1, "nbd");
        Assert.That(Convert.ToHexString(buffer, 0, n), Is.EqualTo(
            "1C000000" + "1000" + "0500" + "01000000" + "00000000" + // nlmsghdr: len 28, GENL_ID_CTRL, REQUEST|ACK, seq 1, pid 0
            "03010000" +                                            // genlmsghdr: CTRL_CMD_GETFAMILY, version 1
            "08000200" + "6E626400"));                              // CTRL_ATTR_FAMILY_NAME "nbd\0"
    }

    [Test]
    public void Connect_carries_size_flags_timeouts_backend_and_nested_sockets()
    {
        var buffer = new byte[256];
        var n = NbdNetlinkCodec.WriteConnect(buffer, Family, 7, new NbdNetlinkConnect
        {
            Sockets = [3, 4],
            SizeBytes = 256UL << 20,
            BlockSizeBytes = 4096,
            ServerFlags = 0x0d,
            DeadConnectionTimeoutSeconds = 30,
            BackendIdentifier = "swapnbd",
        });
        Assert.That(Convert.ToHexString(buffer, 0, n), Is.EqualTo(
            "6C000000" + "1A00" + "0500" + "07000000" + "00000000" +
            "01010000" +                                  // NBD_CMD_CONNECT, version 1
            "0C000200" + "0000001000000000" +             // SIZE_BYTES 256 MiB
            "0C000300" + "0010000000000000" +             // BLOCK_SIZE_BYTES 4096
            "0C000500" + "0D00000000000000" +             // SERVER_FLAGS HAS_FLAGS|SEND_FLUSH|SEND_FUA
            "0C000800" + "1E00000000000000" +             // DEAD_CONN_TIMEOUT 30
            "0C000A00" + "737761706E626400" +             // BACKEND_IDENTIFIER "swapnbd\0"
            "1C000780" +                                  // SOCKETS (nested)
            "0C000180" + "08000100" + "03000000" +        //   SOCK_ITEM { SOCK_FD 3 }
            "0C000180" + "08000100" + "04000000"));       //   SOCK_ITEM { SOCK_FD 4 }
    }

    [Test]
    public void Connect_with_an_index_and_a_timeout_puts_them_in()
    {
        var buffer = new byte[256];
        var n = NbdNetlinkCodec.WriteConnect(buffer, Family, 1, new NbdNetlinkConnect { Sockets = [9], SizeBytes = 4096, Index = 2, TimeoutSeconds = 600 });
        var hex = Convert.ToHexString(buffer, 0, n);
        Assert.That(hex, Does.StartWith("5C000000" + "1A00" + "0500" + "01000000" + "00000000" + "01010000" + "08000100" + "02000000"));
        Assert.That(hex, Does.Contain("0C000400" + "5802000000000000"), "TIMEOUT 600");
        Assert.That(() => NbdNetlinkCodec.WriteConnect(buffer, Family, 1, new NbdNetlinkConnect { Sockets = [], SizeBytes = 4096 }), Throws.ArgumentException);
    }

    [Test]
    public void Reconfigure_names_the_device_and_hands_over_a_new_socket()
    {
        var buffer = new byte[128];
        var n = NbdNetlinkCodec.WriteReconfigure(buffer, Family, 3, new NbdNetlinkReconfigure { Index = 0, Sockets = [5], BackendIdentifier = "swapnbd" });
        Assert.That(Convert.ToHexString(buffer, 0, n), Is.EqualTo(
            "38000000" + "1A00" + "0500" + "03000000" + "00000000" +
            "03010000" +                                  // NBD_CMD_RECONFIGURE
            "08000100" + "00000000" +                     // INDEX 0
            "0C000A00" + "737761706E626400" +             // BACKEND_IDENTIFIER
            "10000780" + "0C000180" + "08000100" + "05000000"));
    }

    [Test]
    public void Disconnect_and_status()
    {
        var buffer = new byte[64];
        var n = NbdNetlinkCodec.WriteDisconnect(buffer, Family, 9, 0);
        Assert.That(Convert.ToHexString(buffer, 0, n), Is.EqualTo("1C000000" + "1A00" + "0500" + "09000000" + "00000000" + "02010000" + "08000100" + "00000000"));
        n = NbdNetlinkCodec.WriteStatus(buffer, Family, 10, null);
        Assert.That(Convert.ToHexString(buffer, 0, n), Is.EqualTo("14000000" + "1A00" + "0500" + "0A000000" + "00000000" + "05010000"));
    }

    [Test]
    public void Family_reply_gives_the_id_and_the_multicast_group()
    {
        // What the controller sends back: name, id (u16, padded), version, and MCAST_GROUPS nested without the flag.
        var reply = Convert.FromHexString(
            "50000000" + "1000" + "0000" + "01000000" + "00000000" +
            "01020000" +
            "08000200" + "6E626400" +
            "06000100" + "1A000000" +
            "08000300" + "01000000" +
            "24000700" +
            "20000100" + "08000200" + "05000000" + "11000100" + "6E62645F6D635F67726F757000" + "000000");
        ReadOnlySpan<byte> datagram = reply;
        Assert.That(NetlinkMessage.TryRead(ref datagram, out var message), Is.True);
        var family = NbdNetlinkCodec.ReadFamily(message);
        Assert.That(family.Name, Is.EqualTo("nbd"));
        Assert.That(family.Id, Is.EqualTo(0x1a));
        Assert.That(family.Version, Is.EqualTo(1));
        Assert.That(family.MulticastGroups, Is.EqualTo(new Dictionary<string, uint> { ["nbd_mc_group"] = 5 }));
        Assert.That(NetlinkMessage.TryRead(ref datagram, out _), Is.False, "one message in the datagram");
    }

    [Test]
    public void Status_reply_lists_devices_and_whether_they_are_connected()
    {
        var reply = Convert.FromHexString(
            "40000000" + "1A00" + "0000" + "0A000000" + "00000000" +
            "05010000" +
            "2C000900" +
            "14000100" + "08000100" + "00000000" + "05000200" + "01000000" +
            "14000100" + "08000100" + "01000000" + "05000200" + "00000000");
        ReadOnlySpan<byte> datagram = reply;
        Assert.That(NetlinkMessage.TryRead(ref datagram, out var message), Is.True);
        Assert.That(message.Sequence, Is.EqualTo(10));
        Assert.That(NbdNetlinkCodec.ReadStatus(message), Is.EqualTo(new[] { new NbdDeviceStatus(0, true), new NbdDeviceStatus(1, false) }));
    }

    [Test]
    public void Link_dead_notice_and_connect_reply_carry_the_index()
    {
        var notice = Convert.FromHexString("1C000000" + "1A00" + "0000" + "00000000" + "00000000" + "04010000" + "08000100" + "03000000");
        ReadOnlySpan<byte> datagram = notice;
        Assert.That(NetlinkMessage.TryRead(ref datagram, out var message), Is.True);
        Assert.That(message.GenericCommand, Is.EqualTo(NbdGenl.CommandLinkDead));
        Assert.That(NbdNetlinkCodec.ReadIndex(message), Is.EqualTo(3));
    }

    [Test]
    public void Error_and_ack_messages_give_the_errno()
    {
        // NLMSG_ERROR: -ENOENT (no such family), then the request's header.
        var error = Convert.FromHexString("24000000" + "0200" + "0001" + "01000000" + "00000000" + "FEFFFFFF" + "1C000000" + "1000" + "0500" + "01000000" + "00000000");
        ReadOnlySpan<byte> datagram = error;
        Assert.That(NetlinkMessage.TryRead(ref datagram, out var message), Is.True);
        Assert.That(message.Type, Is.EqualTo(Netlink.TypeError));
        Assert.That(message.ErrorCode(), Is.EqualTo(2));

        var ack = Convert.FromHexString("24000000" + "0200" + "0001" + "01000000" + "00000000" + "00000000" + "1C000000" + "1000" + "0500" + "01000000" + "00000000");
        datagram = ack;
        Assert.That(NetlinkMessage.TryRead(ref datagram, out message), Is.True);
        Assert.That(message.ErrorCode(), Is.Zero);
    }

    [Test]
    public void Lengths_that_do_not_fit_are_protocol_errors()
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => Read("FF000000" + "1A00" + "0000" + "00000000" + "00000000"), Throws.TypeOf<NetlinkProtocolException>(), "message longer than the datagram");
            Assert.That(() => Read("08000000" + "1A00" + "0000" + "00000000" + "00000000"), Throws.TypeOf<NetlinkProtocolException>(), "message shorter than its header");
            Assert.That(() => Read("1A00" + "0000"), Throws.TypeOf<NetlinkProtocolException>(), "datagram shorter than a header");
            Assert.That(() => ReadIndexOf("1C000000" + "1A00" + "0000" + "00000000" + "00000000" + "04010000" + "40000100" + "03000000"), Throws.TypeOf<NetlinkProtocolException>(), "attribute longer than the message");
            Assert.That(() => ReadIndexOf("1A000000" + "1A00" + "0000" + "00000000" + "00000000" + "04010000" + "06000100" + "0300"), Throws.TypeOf<NetlinkProtocolException>(), "u32 attribute with 2 bytes");
            Assert.That(() => ReadIndexOf("14000000" + "1A00" + "0000" + "00000000" + "00000000" + "0401"), Throws.TypeOf<NetlinkProtocolException>(), "no genl header");
        });
    }

    private static void Read(string hex)
    {
        ReadOnlySpan<byte> datagram = Convert.FromHexString(hex);
        NetlinkMessage.TryRead(ref datagram, out _);
    }

    private static uint ReadIndexOf(string hex)
    {
        ReadOnlySpan<byte> datagram = Convert.FromHexString(hex);
        NetlinkMessage.TryRead(ref datagram, out var message);
        return NbdNetlinkCodec.ReadIndex(message);
    }
}
