using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>Slab mode as operators run it (real executables), backup-disk failures, and a daemon that sends noise.</summary>
[Category(Tier.Integration)]
public sealed class SlabSystemTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task Backup_disk_failures_are_EIO_never_wrong_data(CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(0, 8 << 20);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 1, new NbdClientOptions(), ct);
        var data = new byte[64 << 10];
        new Random(9).NextBytes(data);
        await pool.WriteAsync(0, data, fua: true, ct);

        cluster.Disk.FailReads = true;
        var read = Assert.ThrowsAsync<NbdServerErrorException>(async () => await pool.ReadAsync(0, new byte[4096], ct),
            string.Join('\n', cluster.Log.Entries.Select(e => e.Message + " " + e.Exception)));
        Assert.That(read!.Error, Is.EqualTo(NbdError.Io));
        cluster.Disk.FailReads = false;

        cluster.Disk.FailWrites = true;
        var write = Assert.ThrowsAsync<NbdServerErrorException>(async () => await pool.WriteAsync(1 << 20, data, fua: false, ct));
        Assert.That(write!.Error, Is.EqualTo(NbdError.Io));
        cluster.Disk.FailWrites = false;

        cluster.Disk.FailFlush = true;
        var flush = Assert.ThrowsAsync<NbdServerErrorException>(async () => await pool.FlushAsync(ct));
        Assert.That(flush!.Error, Is.EqualTo(NbdError.Io));
        cluster.Disk.FailFlush = false;

        var back = new byte[data.Length];
        await pool.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(data), "the data written before the faults is intact");
        Assert.That(cluster.Log.Entries.Any(e => e.EventId.Id == EventIds.BackupDiskError), "disk errors are logged");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_daemon_that_sends_random_frames_never_disturbs_the_device(CancellationToken ct)
    {
        using var noise = new NoisyDaemon();
        await using var cluster = await SlabCluster.StartAsync(1, 8 << 20, extraDaemons: [("noise", noise.EndPoint)]);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(8 << 20, 21, cache: false);
        await workload.RunAsync(pool, 30, ct);
        await workload.VerifyAllAsync(pool, ct);

        Assert.That(workload.Mismatches, Is.Zero);
        Assert.That(noise.Connections, Is.GreaterThan(1), "the server kept reconnecting to the noisy daemon");
        Assert.That(cluster.Log.Entries.Count(e => e.EventId.Id == EventIds.LinkDown), Is.GreaterThan(0), "its links were failed");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_client_that_stops_reading_replies_does_not_hold_up_the_others(CancellationToken ct)
    {
        const int size = 16 << 20;
        await using var cluster = await SlabCluster.StartAsync(1, size);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 1, new NbdClientOptions(), ct);
        var data = new byte[size];
        new Random(4).NextBytes(data);
        for (var offset = 0; offset < size; offset += 1 << 20)
        {
            await pool.WriteAsync(offset, data.AsMemory(offset, 1 << 20), fua: false, ct);
        }

        await cluster.WaitForAsync(s => s.PagesRemote == size / 4096, "every page on the daemon", ct);

        // 64 MiB of READ replies nobody reads: far more than the socket buffers hold, so the server's reply sends block.
        await using var stuck = await RawNbdClient.ConnectTcpAsync(cluster.Uri.Port, ct);
        await stuck.HandshakeAsync(ct);
        for (var i = 0; i < 64; i++)
        {
            await stuck.SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)i + 1, (ulong)(i % 16) << 20, 1 << 20), ct);
        }

        // Wait until the server is stuck in a send to it: replies queued at its socket and the queue no longer growing.
        // Whichever thread is stuck there (a daemon link's receive thread, which the watchdog then replaces, or another),
        // the other client's reads below go through the same daemon link and must not wait for it.
        var socket = stuck.Stream.Socket;
        await cluster.WaitForAsync(_ => socket.Available > 0, "replies queued at the client that reads none", ct);
        for (var queued = -1; queued != socket.Available;)
        {
            queued = socket.Available;
            await Task.Delay(200, ct);
        }

        var back = new byte[size];
        for (var offset = 0; offset < size; offset += 1 << 20)
        {
            await pool.ReadAsync(offset, back.AsMemory(offset, 1 << 20), ct);
        }

        Assert.That(back, Is.EqualTo(data));
        Assert.That(cluster.Device.GetStats().Daemons[0].Slabs, Is.GreaterThan(0), "the daemon was not failed for it");
    }

    [TestCase("--portal", "missing.list", "Portal:")]
    [TestCase("--backend", "slabs", "BackupDisk:")]
    [TestCase("--slab-size", "3MiB", "SlabSize:")]
    [TestCase("--daemon-timeout", "0", "DaemonTimeout:")]
    [TestCase("--connect-timeout", "-1", "ConnectTimeout:")]
    [TestCase("--heartbeat", "soon", "HeartbeatInterval:")]
    [TestCase("--prefetch-cache", "5000", "PrefetchCache: 5000 must be a multiple of 4KiB")]
    [TestCase("--prefetch-cache", "2GiB", "PrefetchCache:")]
    [TestCase("--prefetch-rate", "4096", "PrefetchRate: 4096 bytes a second must be at least 1MiB")]
    [CancelAfter(60_000)]
    public async Task Slab_mode_configuration_errors_name_the_key(string key, string value, string expected, CancellationToken ct)
    {
        var directory = Directory.CreateTempSubdirectory("swapnbd-config-").FullName;
        try
        {
            var portal = Path.Combine(directory, "portal.list");
            await File.WriteAllTextAsync(portal, "1\n127.0.0.1:1\n", ct);
            var args = new List<string> { "--listen", "127.0.0.1:0", "--auth-key-file", TestKeys.File };
            if (key != "--portal")
            {
                args.AddRange(["--portal", portal]);
                if (key != "--backend")
                {
                    args.AddRange(["--backup-disk", Path.Combine(directory, "backup.img")]);
                }
            }

            args.AddRange([key, key == "--portal" ? Path.Combine(directory, value) : value]);
            if (key == "--portal")
            {
                args.AddRange(["--backup-disk", Path.Combine(directory, "backup.img")]);
            }

            var (exit, output) = await Repo.RunAsync(Repo.Path("out", "swapnbd-server"), args, TimeSpan.FromSeconds(20), ct);
            Assert.That(exit, Is.EqualTo(2), output);
            Assert.That(output, Does.Contain(expected));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
