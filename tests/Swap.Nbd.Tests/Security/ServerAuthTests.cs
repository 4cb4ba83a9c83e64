using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using Swap.Common.Security;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Security;

/// <summary>
/// The server's side of the cluster key: a daemon that cannot prove the key (a fake one, or another cluster's) is
/// found at its welcome, gets nothing beyond the HELLO, is logged naming it, and never holds a slab; the device goes
/// on from the other daemons and the backup disk.
/// </summary>
[Category(Tier.Integration)]
public sealed class ServerAuthTests
{
    private const ulong Victim = 7;

    [Test, CancelAfter(30_000)]
    public async Task A_fake_daemon_is_found_at_its_welcome_before_the_server_sends_anything_more(CancellationToken ct)
    {
        var otherKey = ClusterKeyFile.Load(TestKeys.NewKeyFile("fake-daemon.key"));
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var fake = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync(ct);
            var answered = BlockingHandshake.Answer(socket, otherKey, 0xFA4E);
            // Answer read the HELLO and sent a welcome; the server must hang up without an AUTH.
            return (answered, socket.Available);
        }, ct);

        var link = DaemonLink.ConnectAsync(listener.LocalEndpoint, Victim, new DaemonLinkSettings { AuthKey = TestKeys.Cluster }, TimeProvider.System, NullLogger.Instance, ct);
        Assert.That(async () => await link, Throws.TypeOf<DaemonAuthException>().With.Message.Contains("failed to prove the cluster key"));
        var (answered, pending) = await fake;
        Assert.That(answered, Is.False, "the server closed the connection instead of sending AUTH");
        Assert.That(pending, Is.Zero);
    }

    [Test, CancelAfter(30_000)]
    public async Task A_daemon_that_timed_out_and_then_proves_another_key_is_logged_as_refused_at_once(CancellationToken ct)
    {
        // The retry logs a streak of failures only at attempts 0, 10, 100, 1000; a change of kind must not wait for
        // attempt 10 (a CI run's first attempt timed out on a loaded machine and the key error went unreported for 60 s).
        var otherKey = ClusterKey.Generate();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var log = new RecordingLoggerProvider();
        var settings = new DaemonLinkSettings
        {
            AuthKey = TestKeys.Cluster,
            ConnectTimeout = TimeSpan.FromMilliseconds(300),
            ReconnectDelay = TimeSpan.FromMilliseconds(20),
            ReconnectMaxDelay = TimeSpan.FromMilliseconds(50),
        };
        await using var endpoint = new DaemonEndpoint("fake:1", listener.LocalEndpoint, Victim, settings, TimeProvider.System, log.CreateLogger("test"));
        endpoint.Start();

        using var silent = await listener.AcceptSocketAsync(ct);    // attempt 0: never answered, times out
        using (var second = await listener.AcceptSocketAsync(ct))   // attempt 1: answers with another cluster's key
        {
            Assert.That(BlockingHandshake.Answer(second, otherKey, 0xFA4E), Is.False);
        }

        using var third = await listener.AcceptSocketAsync(ct);     // attempt 2 starts after attempt 1 was handled
        var entries = log.Entries.ToArray();
        Assert.That(entries.Where(e => e.EventId.Id == EventIds.DaemonConnectFailed).Select(e => e.Message), Has.One.Contains("fake:1"), "the timeout of attempt 0");
        Assert.That(entries.Where(e => e.EventId.Id == EventIds.DaemonAuthFailed).Select(e => e.Message), Has.One.Contains("failed to prove the cluster key"), "the key error of attempt 1, at once");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_server_never_places_a_slab_on_a_daemon_of_another_cluster_and_logs_it(CancellationToken ct)
    {
        await using var foreign = await TestDaemon.StartAsync(process: false, o => o.AuthKeyFile = TestKeys.NewKeyFile("foreign-cluster.key"));
        await using var cluster = await SlabCluster.StartAsync(daemons: 1, size: 8L << 20, extraDaemons: [(foreign.Name, new IPEndPoint(IPAddress.Loopback, foreign.Port))]);
        await TestDonor.WaitForAsync(() => cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.DaemonAuthFailed), ct);

        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 1, new NbdClientOptions(), ct);
        var data = DonorTestClient.Pattern(8 << 20, 14);
        for (var offset = 0; offset < data.Length; offset += 1 << 20)
        {
            await pool.WriteAsync(offset, data.AsMemory(offset, 1 << 20), fua: false, ct);
        }

        await cluster.WaitSettledAsync(ct);
        var stats = cluster.Device.GetStats();
        Assert.That(stats.Daemons[1], Has.Property("Up").False.And.Property("Slabs").Zero, "the daemon of another cluster is never joined");
        Assert.That(stats.Daemons[0].Slabs, Is.EqualTo(stats.MappedSlabs).And.GreaterThan(0));
        Assert.That(foreign.Daemon!.SlabCount, Is.Zero);
        var failure = cluster.Log.Entries.First(e => e.EventId.Id == EventIds.DaemonAuthFailed);
        Assert.That(failure.Level, Is.EqualTo(LogLevel.Error));
        Assert.That(failure.Message, Does.Contain(foreign.Name).And.Contain("failed to prove the cluster key"));
        var back = new byte[data.Length];
        for (var offset = 0; offset < data.Length; offset += 1 << 20)
        {
            await pool.ReadAsync(offset, back.AsMemory(offset, 1 << 20), ct);
        }

        Assert.That(back.AsSpan().SequenceEqual(data), Is.True);
    }
}
