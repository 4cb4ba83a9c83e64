using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Placement;

/// <summary>
/// Donors from DNS against a real DNS server (dnsmasq on loopback) whose records change while a workload runs:
/// the server follows A records (dns://NAME:PORT) and SRV records (dns+srv://…) at the records' TTL; a donor added
/// joins and takes slabs, one removed is drained (it holds none of the server's slabs and its link is closed), and an
/// NXDOMAIN keeps the last good list. Every read is checked against the reference model. Daemons listen on
/// 127.0.0.2-4 (all loopback), one port for the A records.
/// </summary>
[Category(Tier.Interop)]
public sealed class DnsPortalTests
{
    private const int Size = 16 << 20;

    [Test]
    [CancelAfter(180_000)]
    public async Task Donors_follow_the_A_records_while_a_workload_runs(CancellationToken ct)
    {
        await using var d2 = await TestDaemon.StartAtAsync("127.0.0.2");
        var port = d2.Port;
        await using var d3 = await TestDaemon.StartAtAsync("127.0.0.3", port);
        await using var d4 = await TestDaemon.StartAtAsync("127.0.0.4", port);
        using var dns = await Dnsmasq.StartAsync(ttl: 1, ["host-record=donors.test,127.0.0.2", "host-record=donors.test,127.0.0.3"], ct);
        await using var server = PortalHost.Start($"dns://donors.test:{port}", Size, dns.Server);
        await server.WaitForAsync(s => s.Daemons.Count == 2 && s.Daemons.All(d => d.Up), "the two donors of the A records are up", ct);
        await using var pool = await NbdClientPool.ConnectAsync(server.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 41, cache: false);
        await workload.FillAsync(pool, ct);
        await server.WaitSettledAsync(ct);
        var d2Slabs = d2.Daemon!.SlabCount;

        await workload.RunAsync(pool, 30, ct, async batch =>
        {
            switch (batch)
            {
                case 3:
                    // A third donor appears, and the first leaves.
                    await dns.SetRecordsAsync(["host-record=donors.test,127.0.0.3", "host-record=donors.test,127.0.0.4"], ct);
                    break;
                case 6:
                    await server.WaitForAsync(s => s.Daemons.Select(d => d.Name).Order().SequenceEqual([d3.Name, d4.Name]) && s.Daemons.All(d => d.Up),
                        "127.0.0.4 joined and 127.0.0.2 was drained and closed", ct);
                    break;
                case 10:
                    // A bad answer: NXDOMAIN for the name.
                    await dns.SetRecordsAsync(["host-record=other.test,127.0.0.9"], ct);
                    break;
                case 14:
                    await server.WaitForAsync(_ => server.Count(EventIds.PortalKeptLastGood) > 0, "the NXDOMAIN was logged", ct);
                    break;
                case 20:
                    await dns.SetRecordsAsync(["host-record=donors.test,127.0.0.3", "host-record=donors.test,127.0.0.4"], ct);
                    break;
            }
        });
        await server.WaitSettledAsync(ct);
        await workload.VerifyAllAsync(pool, ct);

        var stats = server.Device.GetStats();
        var d2Connections = await d2.SettledConnectionsAsync(0, ct);
        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero, "every read matched the reference model");
            Assert.That(stats.Daemons.Select(d => d.Name).Order(), Is.EqualTo(new[] { d3.Name, d4.Name }), "the NXDOMAIN changed nothing");
            Assert.That(d2Slabs, Is.GreaterThan(0), "127.0.0.2 held slabs before it was drained");
            Assert.That(d2.Daemon!.SlabCount, Is.Zero, "127.0.0.2 holds none now");
            Assert.That(d2Connections, Is.Zero, "and its link is closed");
            Assert.That(stats.Daemons.Single(d => d.Name == d4.Name).Slabs, Is.GreaterThan(0), "127.0.0.4 took slabs");
            Assert.That(server.Log.Entries.Where(e => e.EventId.Id == EventIds.PortalKeptLastGood).Select(e => e.Message),
                Has.Some.Contains("NXDomain").IgnoreCase.Or.Some.Contains("NXDOMAIN").IgnoreCase.Or.Some.Contains("NotExistentDomain"));
        });
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task Donors_follow_the_SRV_records_each_on_its_port(CancellationToken ct)
    {
        await using var d2 = await TestDaemon.StartAtAsync("127.0.0.2");
        await using var d3 = await TestDaemon.StartAtAsync("127.0.0.3");
        await using var d4 = await TestDaemon.StartAtAsync("127.0.0.4");
        string[] Records(params TestDaemon[] daemons) =>
        [
            .. daemons.Select((d, i) => $"srv-host=_swapnbd._tcp.donors.test,donor{i}.test,{d.Port}"),
            .. daemons.Select((d, i) => $"host-record=donor{i}.test,{d.Name.Split(':')[0]}"),
        ];
        using var dns = await Dnsmasq.StartAsync(ttl: 1, Records(d2, d3), ct);
        await using var server = PortalHost.Start("dns+srv://_swapnbd._tcp.donors.test", Size, dns.Server);
        await server.WaitForAsync(s => s.Daemons.Count == 2 && s.Daemons.All(d => d.Up), "the two SRV donors are up", ct);
        Assert.That(server.Daemons.Select(d => d.Name).Order(), Is.EqualTo(new[] { d2.Name, d3.Name }));
        await using var pool = await NbdClientPool.ConnectAsync(server.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(Size, 43, cache: false);
        await workload.FillAsync(pool, ct);
        await server.WaitSettledAsync(ct);

        await workload.RunAsync(pool, 16, ct, async batch =>
        {
            if (batch == 3)
            {
                await dns.SetRecordsAsync(Records(d4, d3), ct);
            }
            else if (batch == 8)
            {
                await server.WaitForAsync(s => s.Daemons.Select(d => d.Name).Order().SequenceEqual([d3.Name, d4.Name]), "the SRV change applied", ct);
            }
        });
        await server.WaitSettledAsync(ct);
        await workload.VerifyAllAsync(pool, ct);
        var d2Connections = await d2.SettledConnectionsAsync(0, ct);
        Assert.Multiple(() =>
        {
            Assert.That(workload.Mismatches, Is.Zero);
            Assert.That(d2.Daemon!.SlabCount, Is.Zero, "the donor gone from the SRV records was drained");
            Assert.That(d2Connections, Is.Zero);
            Assert.That(server.Device.GetStats().Daemons.Single(d => d.Name == d4.Name).Slabs, Is.GreaterThan(0));
        });
    }
}
