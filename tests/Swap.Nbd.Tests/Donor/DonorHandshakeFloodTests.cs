using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Donor;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Donor;

/// <summary>
/// Connections that never say HELLO have a budget of their own on the donor (MaxHandshakes, the oldest closed for
/// a newcomer) and take none of the MaxConnections places: they cannot keep a server, or its reconnect, out until the
/// HELLO timeout clears them. The flood is larger than MaxConnections (256), which it filled before.
/// </summary>
[Category(Tier.Integration)]
public sealed class DonorHandshakeFloodTests
{
    private const int Flood = 300;
    private static readonly int Budget = new DonorOptions().MaxHandshakes;

    [Test, CancelAfter(60_000)]
    public async Task Idle_connections_beyond_every_limit_do_not_keep_a_client_from_its_hello(CancellationToken ct)
    {
        // The daemon's clock is fake: its HELLO timer never fires, so only the budget can let the client in.
        await using var donor = new TestDonor();
        Assert.That(donor.Options.MaxConnections, Is.LessThan(Flood), "the flood would fill every connection place");
        var flood = new List<DonorTestClient>();
        try
        {
            for (var i = 0; i < Flood; i++)
            {
                flood.Add(await donor.ConnectAsync(ct));
            }

            var stopwatch = Stopwatch.StartNew();
            await using (var client = await donor.HelloAsync(7, ct))
            {
                var slab = await client.AllocOkAsync((ulong)TestDonor.Slab, ct);
                var page = DonorTestClient.Pattern(4096, 3);
                Assert.That(await client.WriteAsync(slab, 8192, page, ct), Is.EqualTo(DaemonStatus.Ok));
                var back = await client.ReadAsync(slab, 8192, 4096, ct);
                Assert.That(back.Data, Is.EqualTo(page));
            }

            Assert.That(stopwatch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
            var evictions = donor.Log.Entries.Count(e => e.EventId.Id == EventIds.DonorHandshakeEvicted);
            Assert.That(evictions, Is.EqualTo(Flood + 1 - Budget), "every connection beyond the budget closed the oldest, each logged once");
            Assert.That(donor.Daemon.HandshakingCount, Is.LessThanOrEqualTo(Budget));
            Assert.That(await flood[0].IsClosedByPeerAsync(ct), Is.True, "the oldest was closed");
        }
        finally
        {
            foreach (var idle in flood)
            {
                await idle.DisposeAsync();
            }
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task An_established_connection_is_never_closed_for_a_newcomer(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MaxHandshakes = 2);
        await using var server = await donor.HelloAsync(1, ct);
        var flood = new List<DonorTestClient>();
        try
        {
            for (var i = 0; i < 50; i++)
            {
                flood.Add(await donor.ConnectAsync(ct));
            }

            // A newcomer is accepted after the whole flood, so by its HELLO every eviction has happened.
            await using var late = await donor.HelloAsync(2, ct);
            Assert.That(donor.Log.Entries.Count(e => e.EventId.Id == EventIds.DonorHandshakeEvicted), Is.EqualTo(50 + 1 - 2));

            // The established connection kept its place through the flood and serves.
            var slab = await server.AllocOkAsync((ulong)TestDonor.Slab, ct);
            Assert.That(await server.WriteAsync(slab, 0, DonorTestClient.Pattern(4096, 1), ct), Is.EqualTo(DaemonStatus.Ok));
        }
        finally
        {
            foreach (var idle in flood)
            {
                await idle.DisposeAsync();
            }
        }
    }

    /// <summary>The real server side: a SwapDevice's daemon link joins a daemon (in-process, or the swapnbd-daemon
    /// process) that already holds 300 idle connections, places a slab there and serves reads from it.</summary>
    [TestCase(false)]
    [TestCase(true)]
    [CancelAfter(120_000)]
    public async Task A_server_link_joins_a_flooded_daemon_and_serves(bool process, CancellationToken ct)
    {
        await using var daemon = await TestDaemon.StartAsync(process);
        var endpoint = new IPEndPoint(IPAddress.Loopback, daemon.Port);
        var flood = new List<Socket>();
        try
        {
            for (var i = 0; i < Flood; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                flood.Add(socket);
                await socket.ConnectAsync(endpoint, ct);
            }

            // The daemon closes no idle connection by timeout before 10 s (HelloTimeout): joining within 5 s is the budget's doing.
            var stopwatch = Stopwatch.StartNew();
            await using var cluster = await SlabCluster.StartAsync(0, 8 << 20, extraDaemons: [(daemon.Name, endpoint)]);
            await cluster.WaitForAsync(s => s.Daemons.All(d => d.Up), "the flooded daemon joined", ct);
            Assert.That(stopwatch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), string.Join('\n', cluster.Log.Entries.Select(e => e.Message)));

            await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 1, new NbdClientOptions(), ct);
            var data = new byte[1 << 20];
            new Random(5).NextBytes(data);
            await pool.WriteAsync(0, data, fua: false, ct);
            await cluster.WaitForAsync(s => s.PagesRemote == data.Length / 4096, "every page on the flooded daemon", ct);
            var back = new byte[data.Length];
            await pool.ReadAsync(0, back, ct);
            Assert.That(back.AsSpan().SequenceEqual(data), "read back from the daemon");
            if (daemon.Daemon is { } inProcess)
            {
                Assert.That(inProcess.HandshakingCount, Is.LessThanOrEqualTo(Budget));
            }
        }
        finally
        {
            foreach (var socket in flood)
            {
                socket.Dispose();
            }
        }
    }
}
