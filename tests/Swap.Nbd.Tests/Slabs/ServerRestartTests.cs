using System.Net;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Backup;
using Swap.Slabs.Mapping;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// A server that stops and starts again on the same backup disk: every acknowledged page is still there, and the
/// daemons free what the earlier run held as soon as the new one says hello (same client id, RELEASE_SLABS).
/// </summary>
[Category(Tier.Integration)]
public sealed class ServerRestartTests
{
    private const long Size = 16L << 20;
    private const long SlabSize = 1L << 20;

    [Test]
    public void The_client_id_is_stable_for_one_backup_disk_and_differs_for_another()
    {
        var directory = Directory.CreateTempSubdirectory("swapnbd-id-").FullName;
        try
        {
            ulong first, again, other;
            using (var disk = BackupDisk.Open(Path.Combine(directory, "a.img"), Size))
            {
                first = StableClientId.For(disk);
            }

            using (var disk = BackupDisk.Open(Path.Combine(directory, "a.img"), Size))
            {
                again = StableClientId.For(disk);
            }

            using (var disk = BackupDisk.Open(Path.Combine(directory, "b.img"), Size))
            {
                other = StableClientId.For(disk);
            }

            Assert.That(first, Is.Not.Zero);
            Assert.That(again, Is.EqualTo(first), "the same file after a restart");
            Assert.That(other, Is.Not.EqualTo(first), "another backup disk");
            Assert.That(StableClientId.Derive("host-a", 1, 2), Is.Not.EqualTo(StableClientId.Derive("host-b", 1, 2)), "another host");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task A_restarted_device_serves_every_page_and_daemons_free_the_old_slabs_at_once(CancellationToken ct)
    {
        var daemons = new List<TestDaemon>();
        var directory = Directory.CreateTempSubdirectory("swapnbd-restart-").FullName;
        try
        {
            for (var i = 0; i < 2; i++)
            {
                // A grace period far longer than the test: only RELEASE_SLABS can free the old slabs in time.
                daemons.Add(await TestDaemon.StartAsync(process: false, o => o.GracePeriod = TimeSpan.FromMinutes(10)));
            }

            var expected = new byte[Size];
            new Random(17).NextBytes(expected);
            await using (var run = await Run.StartAsync(directory, daemons))
            {
                await run.Pool.WriteAsync(0, expected, ct: ct);
                await run.WaitAsync(s => s.ActiveSlabs == (int)(Size / SlabSize) && s.PagesRemote == Size / 4096, "every slab active and every page on a daemon", ct);
                Assert.That(daemons.Sum(d => d.Daemon!.SlabCount), Is.EqualTo(Size / SlabSize));
            }

            // The old run's connections are closed: without the release its slabs would stay for the grace period.
            await using (var run = await Run.StartAsync(directory, daemons))
            {
                await run.WaitAsync(s => s.Daemons.All(d => d.Up), "daemons joined", ct);
                Assert.That(daemons.Sum(d => d.Daemon!.SlabCount), Is.Zero, "the earlier run's slabs are freed at hello");

                var back = new byte[Size];
                await run.Pool.ReadAsync(0, back, ct);
                Assert.That(back, Is.EqualTo(expected), "every acknowledged page, from the backup disk");

                await run.Pool.WriteAsync(0, expected.AsMemory(0, (int)SlabSize), ct: ct);
                await run.WaitAsync(s => s.ActiveSlabs >= 1, "the rewritten slab placed again", ct);
                Assert.That(daemons.Sum(d => d.Daemon!.SlabCount), Is.EqualTo(1), "only what the new run placed");
            }
        }
        finally
        {
            foreach (var daemon in daemons)
            {
                await daemon.DisposeAsync();
            }

            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task The_server_process_killed_and_restarted_serves_every_acknowledged_page(CancellationToken ct)
    {
        await using var system = await SwapSystem.StartAsync(Size, SlabSize, daemons: 2, ct: ct);
        var expected = new byte[Size];
        new Random(23).NextBytes(expected);
        await using (var pool = await NbdClientPool.ConnectAsync(NbdUri.Parse(system.Uri), 2, new NbdClientOptions(), ct))
        {
            // No FLUSH: acknowledged writes are in the backup file (page cache), which a process kill does not lose.
            await pool.WriteAsync(0, expected, ct: ct);
        }

        await system.RestartServerAsync(ct);
        await using (var pool = await NbdClientPool.ConnectAsync(NbdUri.Parse(system.Uri), 2, new NbdClientOptions(), ct))
        {
            var back = new byte[Size];
            await pool.ReadAsync(0, back, ct);
            Assert.That(back, Is.EqualTo(expected), string.Join('\n', system.ServerLog));
        }
    }

    /// <summary>One run of a server: the swap device on the backup disk in <c>directory</c>, an NBD server, a client.</summary>
    private sealed class Run : IAsyncDisposable
    {
        private Run(SwapDevice device, Swap.Nbd.Server.Hosting.NbdServer server, NbdClientPool pool)
        {
            Device = device;
            Server = server;
            Pool = pool;
        }

        public SwapDevice Device { get; }

        public Swap.Nbd.Server.Hosting.NbdServer Server { get; }

        public NbdClientPool Pool { get; }

        public static async Task<Run> StartAsync(string directory, IReadOnlyList<TestDaemon> daemons)
        {
            var disk = BackupDisk.Open(Path.Combine(directory, "backup.img"), Size);
            var options = SlabCluster.FastOptions(SlabSize) with { ClientId = StableClientId.For(disk) };
            var device = new SwapDevice(Size, disk, daemons.Select(d => (d.Name, (EndPoint)new IPEndPoint(IPAddress.Loopback, d.Port))).ToList(), options);
            device.Start();
            var server = new Swap.Nbd.Server.Hosting.NbdServer(new Swap.Nbd.Server.Hosting.NbdServerOptions { Listen = "127.0.0.1:0" }, device);
            server.Start();
            var port = ((IPEndPoint)server.EndPoints.First(e => e is IPEndPoint)).Port;
            var pool = await NbdClientPool.ConnectAsync(NbdUri.Parse($"nbd://127.0.0.1:{port}"), 1, new NbdClientOptions());
            return new Run(device, server, pool);
        }

        public async Task WaitAsync(Func<SwapDeviceStats, bool> condition, string what, CancellationToken ct)
        {
            for (var i = 0; i < 600 && !condition(Device.GetStats()); i++)
            {
                await Task.Delay(50, ct);
            }

            Assert.That(condition(Device.GetStats()), Is.True, $"{what}; stats: {Device.GetStats()}");
        }

        public async ValueTask DisposeAsync()
        {
            await Pool.DisposeAsync();
            await Server.DisposeAsync();
            await Device.StopAsync();
        }
    }
}
