using NUnit.Framework;
using Swap.Server;
using Swap.Server.Portal;

namespace Swap.Nbd.Tests.Placement;

/// <summary>What --portal accepts (a file, dns://NAME:PORT, dns+srv://NAME) and the errors, each naming the key and the fix.</summary>
[Category(Tier.Unit)]
public sealed class PortalAddressTests
{
    [TestCase("/etc/swapnbd/portal.list", PortalKind.File, "/etc/swapnbd/portal.list", 0)]
    [TestCase("portal.list", PortalKind.File, "portal.list", 0)]
    [TestCase("dns://swapnbd-donors.swap.svc.cluster.local:9400", PortalKind.DnsAddresses, "swapnbd-donors.swap.svc.cluster.local", 9400)]
    [TestCase("DNS://donors.test.:1", PortalKind.DnsAddresses, "donors.test", 1)]
    [TestCase("dns+srv://_swapnbd._tcp.donors.example.org", PortalKind.DnsSrv, "_swapnbd._tcp.donors.example.org", 0)]
    public void Valid_portals_parse(string text, PortalKind kind, string target, int port)
    {
        var address = PortalAddress.Parse(text);
        Assert.That((address.Kind, address.Target, address.Port), Is.EqualTo((kind, target, port)));
        Assert.That(PortalAddress.Parse(address.ToString()), Is.EqualTo(address), "ToString round-trips");
    }

    [TestCase("dns://donors.test", "the daemons' port is required")]
    [TestCase("dns://donors.test:0", "1-65535")]
    [TestCase("dns://donors.test:70000", "1-65535")]
    [TestCase("dns://donors test:9400", "is not a DNS name")]
    [TestCase("dns://-bad.test:9400", "is not a DNS name")]
    [TestCase("dns+srv://donors.test", "_SERVICE._PROTO.NAME")]
    [TestCase("dns+srv://_x._tcp..test", "_SERVICE._PROTO.NAME")]
    [TestCase("http://donors.test/list", "unknown scheme")]
    public void Invalid_portals_are_refused_with_the_fix(string text, string says)
    {
        Assert.That(PortalAddress.Problem(text), Does.Contain(says));
        var errors = new ServerOptions { Backend = "slabs", Portal = text, BackupDisk = "/tmp/b.img", InsecureNoAuth = true }.Validate();
        Assert.That(errors, Has.Some.StartsWith("Portal: ").And.Contains(says));
    }

    [Test]
    public void The_name_server_and_the_refresh_are_checked_with_their_keys()
    {
        var errors = new ServerOptions
        {
            Backend = "slabs", Portal = "dns://donors.test:9400", BackupDisk = "/tmp/b.img", InsecureNoAuth = true,
            DnsServer = "ns.example.org:53", PortalRefresh = TimeSpan.FromMilliseconds(500),
        }.Validate();
        Assert.That(errors, Has.Some.StartsWith("DnsServer: --dns-server 'ns.example.org:53' is not IP:PORT"));
        Assert.That(errors, Has.Some.StartsWith("PortalRefresh: must be at least 1 second"));
        Assert.That(new ServerOptions { Backend = "slabs", Portal = "dns://donors.test:9400", BackupDisk = "/tmp/b.img", InsecureNoAuth = true, DnsServer = "[::1]:5353" }.Validate(),
            Has.None.StartsWith("DnsServer").And.None.StartsWith("Portal"));
    }
}
