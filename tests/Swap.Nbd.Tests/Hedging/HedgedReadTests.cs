using System.Diagnostics;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Faults;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Hedging;

namespace Swap.Nbd.Tests.Hedging;

/// <summary>
/// Hedged reads against a real daemon that stalls: the reads of its slabs are answered from the backup disk long
/// before the daemon timeout, the link stays up, and the daemon's late replies, which land after the NBD replies went
/// out (from the server's pooled buffers, reused at once), change nothing: every byte read matches a reference model through several stalls and rewrites, and every
/// hedged read's buffer stays out of the pool until its late reply has landed. Sealed and unsealed.
/// </summary>
[Category(Tier.Integration)]
public sealed class HedgedReadTests
{
    private const int SlabSize = 1 << 20;
    private const int Size = 4 * SlabSize;
    private const int Piece = 64 << 10;
    private static readonly TimeSpan DaemonTimeout = TimeSpan.FromSeconds(20);

    [TestCase(true)]
    [TestCase(false)]
    [CancelAfter(180_000)]
    public async Task A_stalled_daemons_reads_come_from_the_disk_and_its_late_replies_change_nothing(bool sealPages, CancellationToken ct)
    {
        await using var cluster = await StartAsync(sealPages, hedge: true);
        var device = cluster.Device;
        var hedger = device.Hedger!;
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        Read read = pool.ReadAsync;
        var random = new Random(sealPages ? 21 : 22);
        var model = new byte[Size];
        random.NextBytes(model);
        await WriteAsync(cluster, model, 0, Size, ct);
        // Warm: every link has its READ latencies (the bound drops from the cap towards the floor).
        await ReadAllAndCheckAsync(read, model, ct);
        var victim = await cluster.VictimAsync(ct);

        for (var stall = 0; stall < 3; stall++)
        {
            var startedBefore = hedger.Started;
            cluster.Daemons[victim].Faults.Active = DonorFaults.Stall;
            var watch = Stopwatch.StartNew();
            await ReadAllAndCheckAsync(read, model, ct);
            var stalledRead = watch.Elapsed;
            await cluster.Daemons[victim].Faults.WaitForHeldRequestAsync(ct);

            // Rewrites while the daemon is stalled: acknowledged from the disk, read back from it.
            for (var i = 0; i < 8; i++)
            {
                var offset = random.Next(Size / 4096) * 4096;
                var length = Math.Min(Size - offset, 4096 * random.Next(1, 5));
                random.NextBytes(model.AsSpan(offset, length));
                Assert.That(device.TryWrite(offset, model.AsSpan(offset, length), fua: false), Is.True);
            }

            await ReadAllAndCheckAsync(read, model, ct);
            var stats = device.GetStats();
            Assert.Multiple(() =>
            {
                Assert.That(stalledRead, Is.LessThan(DaemonTimeout / 4), "the reads did not wait for the stalled daemon");
                Assert.That(stats.Daemons[victim].Up, Is.True, "the stalled daemon's link is still up: nothing timed out");
                Assert.That(stats.HedgedReads, Is.GreaterThan(startedBefore), "reads of the stalled daemon's slabs were hedged");
                Assert.That(stats.HedgeWonByDisk, Is.GreaterThan(0));
                Assert.That(hedger.FreeEntries, Is.LessThan(ReadHedger.DefaultEntries), "hedged reads hold their buffers while the daemon may still write them");
            });

            cluster.Daemons[victim].Faults.Active = DonorFaults.None;
            await cluster.WaitForAsync(_ => hedger.FreeEntries == ReadHedger.DefaultEntries, "every late reply landed and its buffer went back", ct);
            Assert.That(hedger.DaemonDropped, Is.GreaterThanOrEqualTo(device.GetStats().HedgeWonByDisk), "each read the disk won had its daemon reply dropped");

            // The buffers the late replies landed in are reused now, by reads the daemons answer again.
            await ReadAllAndCheckAsync(read, model, ct);
            await WriteAsync(cluster, model, random.Next(Size / Piece) * Piece, Piece, ct);
        }

        await ReadAllAndCheckAsync(read, model, ct);
        Assert.That(cluster.Log.Entries.Where(e => e.EventId.Id == EventIds.LinkDown).Select(e => e.Message), Is.Empty, "no daemon was failed");
        Assert.That(device.GetStats().Daemons.All(d => d.Up), Is.True);
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Without_hedging_a_read_waits_for_its_stalled_daemon(CancellationToken ct)
    {
        await using var cluster = await StartAsync(sealPages: true, hedge: false);
        var device = cluster.Device;
        Assert.That(device.Hedger, Is.Null);
        var model = new byte[Size];
        new Random(23).NextBytes(model);
        await WriteAsync(cluster, model, 0, Size, ct);
        var victim = await cluster.VictimAsync(ct);

        cluster.Daemons[victim].Faults.Active = DonorFaults.Stall;
        var reading = ReadAllAndCheckAsync(device.ReadAsync, model, ct);
        await cluster.Daemons[victim].Faults.WaitForHeldRequestAsync(ct);
        Assert.That(reading.IsCompleted, Is.False, "a read of the stalled daemon's slab is still waiting");

        cluster.Daemons[victim].Faults.Active = DonorFaults.None;
        await reading;
        Assert.That(device.GetStats().HedgedReads, Is.Zero);
    }

    private static Task<SlabCluster> StartAsync(bool sealPages, bool hedge) =>
        SlabCluster.StartAsync(2, Size, SlabSize, sealPages: sealPages, configureDevice: o => o with
        {
            HedgeReads = hedge,
            HedgeFloor = TimeSpan.FromMilliseconds(1),
            // Long enough that no stall here fails a daemon: what answers the reads is hedging, not the timeout.
            Links = o.Links with { RequestTimeout = DaemonTimeout, HeartbeatInterval = TimeSpan.FromSeconds(5) },
        });

    /// <summary>
    /// Writes model[offset..+length] through the device and waits until the daemons hold all of it again. Written
    /// twice: pages written while their slab is being filled may stay disk-only until written again.
    /// </summary>
    private static async Task WriteAsync(SlabCluster cluster, byte[] model, int offset, int length, CancellationToken ct)
    {
        for (var pass = 0; pass < 2; pass++)
        {
            for (var position = offset; position < offset + length; position += Piece)
            {
                Assert.That(cluster.Device.TryWrite(position, model.AsSpan(position, Math.Min(Piece, offset + length - position)), fua: false), Is.True);
            }

            await cluster.WaitSettledAsync(ct);
        }

        await cluster.WaitForAsync(s => s.PagesRemote == s.PagesWritten, "every written page valid on a daemon", ct);
    }

    /// <summary>A read through the NBD server or straight from the device.</summary>
    private delegate ValueTask Read(long offset, Memory<byte> destination, CancellationToken ct);

    /// <summary>Reads the whole device in 64 KiB pieces and some 4 KiB pages, all at once, each checked against the model.</summary>
    private static async Task ReadAllAndCheckAsync(Read read, byte[] model, CancellationToken ct)
    {
        var reads = new List<Task>();
        for (var offset = 0; offset < Size; offset += Piece)
        {
            reads.Add(ReadAndCheckAsync(read, model, offset, Piece, ct));
            reads.Add(ReadAndCheckAsync(read, model, offset + 4096, 4096, ct));
        }

        await Task.WhenAll(reads);
    }

    private static async Task ReadAndCheckAsync(Read read, byte[] model, int offset, int length, CancellationToken ct)
    {
        var buffer = new byte[length];
        await read(offset, buffer, ct);
        if (!buffer.AsSpan().SequenceEqual(model.AsSpan(offset, length)))
        {
            Assert.Fail($"read at {offset} (+{length}) differs from what was written");
        }
    }
}
