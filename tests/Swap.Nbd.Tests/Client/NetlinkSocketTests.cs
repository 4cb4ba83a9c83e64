using NUnit.Framework;
using Swap.Nbd.Client.Netlink;

namespace Swap.Nbd.Tests.Client;

/// <summary>The generic netlink socket against this host's kernel: the controller exists everywhere, nbd does not here.</summary>
[Category(Tier.Integration)]
public sealed class NetlinkSocketTests
{
    [Test]
    public void Controller_family_lookup_goes_through_the_socket()
    {
        using var socket = NetlinkSocket.OpenGeneric();
        var family = socket.GetFamily("nlctrl");
        Assert.That(family.Name, Is.EqualTo("nlctrl"));
        Assert.That(family.Id, Is.EqualTo(Netlink.TypeGenericController));
        Assert.That(family.MulticastGroups, Does.ContainKey("notify"));

        // Sequence numbers advance: a second request on the same socket matches its own ACK.
        Assert.That(socket.GetFamily("nlctrl").Id, Is.EqualTo(family.Id));
    }

    [Test]
    public void Nbd_family_resolves_or_the_error_says_modprobe_nbd()
    {
        using var socket = NetlinkSocket.OpenGeneric();
        if (Directory.Exists("/sys/module/nbd"))
        {
            // A host with the module: the lookup must work and name the group the persist loop joins.
            var nbd = socket.GetFamily(NbdGenl.FamilyName);
            Assert.That(nbd.MulticastGroups, Does.ContainKey(NbdGenl.MulticastGroup));
        }
        else
        {
            var ex = Assert.Throws<NetlinkErrorException>(() => socket.GetFamily(NbdGenl.FamilyName));
            Assert.That(ex!.Errno, Is.EqualTo(2));
            Assert.That(ex.Message, Is.EqualTo("this kernel has no nbd netlink family: modprobe nbd"));
            Assert.Throws<NetlinkErrorException>(() => NbdNetlink.Open(), "NbdNetlink.Open resolves the family first");
        }

        // GENL_NAMSIZ is 16: a longer name is EINVAL, not ENOENT.
        var other = Assert.Throws<NetlinkErrorException>(() => socket.GetFamily("swapnbd-none"));
        Assert.That(other!.Errno, Is.EqualTo(2));
        Assert.That(other.Message, Does.Contain("no generic netlink family 'swapnbd-none'"));
    }

    [Test]
    public void Disposed_socket_refuses_requests()
    {
        var socket = NetlinkSocket.OpenGeneric();
        socket.Dispose();
        Assert.Throws<ObjectDisposedException>(() => socket.GetFamily("nlctrl"));
    }
}
