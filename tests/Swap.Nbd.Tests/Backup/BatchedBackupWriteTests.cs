using NUnit.Framework;
using Swap.BlockDevices;
using Swap.Nbd.Client;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Backup;

namespace Swap.Nbd.Tests.Backup;

/// <summary>
/// Batches of backup disk writes in flight together (direct I/O on a file, native AIO): data against a reference model,
/// a full disk reported per write, the slab device's batch (whole pages, no page twice, else declined and nothing
/// written) and the NBD server gathering pipelined WRITEs into batches.
/// </summary>
[Category(Tier.Integration)]
public sealed class BatchedBackupWriteTests
{
    private const int PageSize = 4096;

    private DirectIoDirectory _direct = null!;

    /// <summary>A directory where O_DIRECT works (<see cref="DirectIoDirectory"/>).</summary>
    private string DirectDir => _direct.Path;

    [SetUp]
    public async Task SetUp() => _direct = await DirectIoDirectory.CreateAsync("swapnbd-batch-");

    [TearDown]
    public async Task TearDown() => await _direct.DisposeAsync();

    [Test]
    public void Batches_of_aligned_unaligned_small_and_large_writes_match_a_reference_model()
    {
        const int size = 16 << 20;
        const int slot = 512 << 10;
        using var disk = BackupDisk.Open(Path.Combine(DirectDir, "backup"), size, BackupIoMode.Direct);
        Assert.That(disk.BatchesWrites, Is.True, "direct I/O on a file batches through native AIO");
        var model = new byte[size];
        var random = new Random(44);
        var scratch = GC.AllocateArray<byte>(size, pinned: true);
        var writes = new BlockWrite[size / slot];
        var errors = new BlockDeviceException?[size / slot];
        for (var round = 0; round < 150; round++)
        {
            // Distinct 512 KiB slots, so no two writes of a batch overlap; within its slot a write may be anything
            // from one sector to the whole slot (more than a bounce buffer), aligned or not, from odd addresses too.
            var count = random.Next(1, writes.Length + 1);
            var slots = Enumerable.Range(0, size / slot).OrderBy(_ => random.Next()).Take(count).ToArray();
            var used = 0;
            for (var i = 0; i < count; i++)
            {
                var aligned = random.Next(4) != 0;
                var length = aligned ? random.Next(1, (slot / PageSize) + 1) * PageSize : random.Next(1, slot);
                var within = aligned ? random.Next(0, ((slot - length) / PageSize) + 1) * PageSize : random.Next(0, slot - length + 1);
                var skew = aligned && random.Next(2) == 0 ? 0 : random.Next(0, 64);
                used += skew;
                var data = scratch.AsMemory(used, length);
                random.NextBytes(data.Span);
                used += length;
                writes[i] = new BlockWrite(((long)slots[i] * slot) + within, data);
            }

            disk.WriteMany(writes.AsSpan(0, count), errors.AsSpan(0, count));
            for (var i = 0; i < count; i++)
            {
                Assert.That(errors[i], Is.Null, $"round {round}, write {i}");
                writes[i].Data.Span.CopyTo(model.AsSpan((int)writes[i].Offset));
            }

            if (round % 25 == 24)
            {
                var back = new byte[size];
                disk.Read(0, back);
                Assert.That(back.AsSpan().SequenceEqual(model), Is.True, $"the disk after round {round}");
            }
        }
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task A_full_disk_fails_the_writes_it_could_not_take_with_no_space_and_the_rest_read_back(CancellationToken ct)
    {
        await using var small = await ScratchMount.Ext4Async(16L << 20, ct);
        var path = Path.Combine(small.Path, "backup");
        using var disk = BackupDisk.Open(path, 64L << 20, BackupIoMode.Direct);
        Assert.That(disk.BatchesWrites, Is.True);
        var random = new Random(45);
        var written = new List<(long Offset, byte[] Data)>();
        var failed = new List<BlockDeviceException>();
        var writes = new BlockWrite[16];
        var errors = new BlockDeviceException?[16];
        var datas = new byte[16][];
        for (var offset = 0L; offset < disk.Size && failed.Count == 0; offset += 16 * 256 << 10)
        {
            for (var i = 0; i < 16; i++)
            {
                datas[i] = new byte[256 << 10];
                random.NextBytes(datas[i]);
                writes[i] = new BlockWrite(offset + ((long)i * (256 << 10)), datas[i]);
            }

            disk.WriteMany(writes, errors);
            for (var i = 0; i < 16; i++)
            {
                if (errors[i] is { } error)
                {
                    failed.Add(error);
                }
                else
                {
                    written.Add((writes[i].Offset, datas[i]));
                }
            }
        }

        Assert.That(failed, Is.Not.Empty, "64 MiB fit on a 16 MiB file system");
        Assert.That(failed.Select(f => f.Error), Is.All.EqualTo(BlockDeviceError.NoSpace), "a full disk is ENOSPC for each write it refused");
        Assert.That(failed[0].Message, Does.Contain(path).And.Contain("write of").And.Contain("No space left on device"));
        Assert.That(written, Has.Count.GreaterThan(4));
        var back = new byte[256 << 10];
        foreach (var (offset, data) in written)
        {
            disk.Read(offset, back);
            Assert.That(back.AsSpan().SequenceEqual(data), Is.True, $"the write at {offset}, reported done, reads back");
        }
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task The_slab_device_takes_whole_page_batches_to_disk_and_daemons_and_declines_two_writes_of_a_page_writing_nothing(CancellationToken ct)
    {
        const int slabSize = 1 << 20;
        await using var cluster = await SlabCluster.StartAsync(2, 2 * slabSize, slabSize);
        var device = cluster.Device;
        device.TryWrite(0, new byte[2 * slabSize], fua: false);
        await cluster.WaitForAsync(s => s.ActiveSlabs == 2 && s.PagesUnsent == 0, "both slabs placed and filled", ct);

        // Eight 16 KiB writes, 64 KiB apart (one stripe each), four on each slab.
        var model = new byte[2 * slabSize];
        var writes = new BlockWrite[8];
        var errors = new BlockDeviceException?[8];
        for (var i = 0; i < writes.Length; i++)
        {
            var data = new byte[16 << 10];
            data.AsSpan().Fill((byte)(i + 1));
            writes[i] = new BlockWrite(((long)(i % 2) * slabSize) + ((long)(i / 2) * (64 << 10)), data);
            data.CopyTo(model.AsSpan((int)writes[i].Offset));
        }

        Assert.That(device.TryWriteBatch(writes, errors), Is.True);
        Assert.That(errors, Is.All.Null);
        Assert.That(cluster.Disk.BatchedWrites, Is.EqualTo(8), "the disk got them as one batch");
        await cluster.WaitForAsync(s => s.PagesUnsent == 0, "the write-behind queues drained", ct);

        // Neighbours in one 64 KiB stripe (swap-outs of adjacent slots) are one batch too.
        var neighbours = new BlockWrite[4];
        for (var i = 0; i < neighbours.Length; i++)
        {
            var data = new byte[PageSize];
            data.AsSpan().Fill((byte)(0x40 + i));
            neighbours[i] = new BlockWrite((192 << 10) + ((long)(3 - i) * PageSize), data);
            data.CopyTo(model.AsSpan((int)neighbours[i].Offset));
        }

        Assert.That(device.TryWriteBatch(neighbours, new BlockDeviceException?[4]), Is.True, "four neighbouring pages of one stripe");
        Assert.That(cluster.Disk.BatchedWrites, Is.EqualTo(12));

        // Declined, nothing written: two writes of one page; a part-page write.
        var samePage = new[] { new BlockWrite(128 << 10, new byte[2 * PageSize]), new BlockWrite((128 << 10) + PageSize, new byte[PageSize]) };
        var partPage = new[] { new BlockWrite(256 << 10, new byte[PageSize]), new BlockWrite((512 << 10) + 100, new byte[100]) };
        Assert.That(device.TryWriteBatch(samePage, new BlockDeviceException?[2]), Is.False, "two writes of one page");
        Assert.That(device.TryWriteBatch(partPage, new BlockDeviceException?[2]), Is.False, "a part-page write");
        Assert.That(cluster.Disk.BatchedWrites, Is.EqualTo(12), "the declined batches wrote nothing");

        var fromDevice = new byte[2 * slabSize];
        await device.ReadAsync(0, fromDevice, ct);
        var fromDisk = new byte[2 * slabSize];
        cluster.Disk.Read(0, fromDisk);
        Assert.Multiple(() =>
        {
            Assert.That(fromDisk.AsSpan().SequenceEqual(model), Is.True, "the disk holds the batch and nothing of the declined ones");
            Assert.That(fromDevice.AsSpan().SequenceEqual(model), Is.True, "reads (daemons first) return the batch");
            Assert.That(device.GetStats().PagesRemote, Is.GreaterThan(0), "the batch's pages went to the daemons too");
            Assert.That(device.GetStats().OpenFailures, Is.Zero);
        });
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Pipelined_writes_reads_and_trims_over_NBD_are_batched_and_match_a_reference_model(CancellationToken ct)
    {
        const int slabSize = 1 << 20;
        const int size = 4 * slabSize;
        await using var cluster = await SlabCluster.StartAsync(2, size, slabSize);
        await using var client = await NbdClientConnection.ConnectAsync(cluster.Uri, ct: ct);
        var model = new byte[size];
        var random = new Random(46);
        for (var round = 0; round < 200; round++)
        {
            // A burst the client sends back to back: mostly writes (some overlapping, some part pages), a read and a
            // trim here and there. Replies complete in any order; every operation of the burst is awaited before
            // the model moves on, and overlapping operations in one burst are kept out of it.
            var pending = new List<Task>();
            var reads = new List<(long Offset, byte[] Buffer, byte[] Expected)>();
            var touched = new HashSet<long>();
            var count = random.Next(1, 48);
            for (var i = 0; i < count; i++)
            {
                var pages = random.Next(1, 33);
                var offset = (long)random.Next(0, (size / PageSize) - pages) * PageSize;
                var partial = random.Next(10) == 0;
                var length = partial ? random.Next(1, pages * PageSize) : pages * PageSize;
                var range = Enumerable.Range(0, ((length + PageSize - 1) / PageSize) + 1).Select(p => (offset / PageSize) + p).ToArray();
                if (range.Any(touched.Contains))
                {
                    continue;
                }

                foreach (var p in range)
                {
                    touched.Add(p);
                }

                switch (random.Next(10))
                {
                    case 0:
                        var buffer = new byte[length];
                        reads.Add((offset, buffer, model.AsSpan((int)offset, length).ToArray()));
                        pending.Add(client.ReadAsync(offset, buffer, ct).AsTask());
                        break;
                    case 1 when !partial:
                        model.AsSpan((int)offset, length).Clear();
                        pending.Add(client.WriteZeroesAsync(offset, (uint)length, ct: ct).AsTask());
                        break;
                    default:
                        var data = new byte[length];
                        random.NextBytes(data);
                        data.CopyTo(model.AsSpan((int)offset));
                        pending.Add(client.WriteAsync(offset, data, ct: ct).AsTask());
                        break;
                }
            }

            await Task.WhenAll(pending);
            foreach (var (offset, buffer, expected) in reads)
            {
                Assert.That(buffer.AsSpan().SequenceEqual(expected), Is.True, $"round {round}: read {offset}+{buffer.Length}");
            }
        }

        await cluster.WaitForAsync(s => s.PagesUnsent == 0, "the write-behind queues drained", ct);
        var back = new byte[size];
        await client.ReadAsync(0, back, ct);
        Assert.Multiple(() =>
        {
            Assert.That(back.AsSpan().SequenceEqual(model), Is.True, "the whole device after the bursts");
            Assert.That(cluster.Disk.BatchedWrites, Is.GreaterThan(0), "the server gathered pipelined WRITEs into batches");
            Assert.That(cluster.Device.GetStats().OpenFailures, Is.Zero);
        });
        var fromDisk = new byte[size];
        cluster.Disk.Read(0, fromDisk);
        Assert.That(fromDisk.AsSpan().SequenceEqual(model), Is.True, "the backup disk holds every page");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task An_overlapped_write_runs_its_work_once_lands_whole_and_fails_on_a_full_disk_after_the_work(CancellationToken ct)
    {
        using var disk = BackupDisk.Open(Path.Combine(DirectDir, "backup"), 4 << 20, BackupIoMode.Direct);
        var random = new Random(47);
        var model = new byte[4 << 20];
        foreach (var (offset, length) in new (long, int)[] { (0, 128 << 10), (1 << 20, 256 << 10), (3 << 20, 4096), (100, 5000), (2 << 20, 1 << 20) })
        {
            var data = new byte[length];
            random.NextBytes(data);
            var work = new CountingWork();
            disk.WriteWhile(offset, data, ref work);
            Assert.That(work.Runs, Is.EqualTo(1), $"the work of the write at {offset}+{length} ran once");
            data.CopyTo(model.AsSpan((int)offset));
        }

        var back = new byte[4 << 20];
        disk.Read(0, back);
        Assert.That(back.AsSpan().SequenceEqual(model), Is.True, "aligned, unaligned and larger-than-a-buffer overlapped writes all landed");

        await using var small = await ScratchMount.Ext4Async(16L << 20, ct);
        using var full = BackupDisk.Open(Path.Combine(small.Path, "backup"), 64L << 20, BackupIoMode.Direct);
        BlockDeviceException? failure = null;
        var chunk = new byte[128 << 10];
        var runs = 0;
        for (var offset = 0L; offset < full.Size && failure is null; offset += chunk.Length)
        {
            var work = new CountingWork();
            try
            {
                full.WriteWhile(offset, chunk, ref work);
            }
            catch (BlockDeviceException ex)
            {
                failure = ex;
            }

            runs += work.Runs;
            Assert.That(work.Runs, Is.EqualTo(1), "the work runs also when the write fails");
        }

        Assert.That(failure, Is.Not.Null, "64 MiB fit on a 16 MiB file system");
        Assert.That(failure!.Error, Is.EqualTo(BlockDeviceError.NoSpace));
        Assert.That(failure.Message, Does.Contain("No space left on device"));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Large_sealed_writes_are_sealed_while_the_disk_writes_them_and_a_failed_one_never_reaches_a_daemon(CancellationToken ct)
    {
        const int slabSize = 1 << 20;
        const int size = 4 * slabSize;
        await using var cluster = await SlabCluster.StartAsync(2, size, slabSize);
        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        var workload = new ReferenceWorkload(size, 48, cache: false);
        await workload.RunAsync(pool, 10, ct);
        var model = new byte[size];
        await pool.ReadAsync(0, model, ct);
        var data = new byte[128 << 10];
        var random = new Random(48);
        for (var offset = 0; offset < size; offset += data.Length)
        {
            random.NextBytes(data);
            await pool.WriteAsync(offset, data, fua: false, ct);
            data.CopyTo(model.AsSpan(offset));
        }

        Assert.That(cluster.Disk.OverlappedWrites, Is.GreaterThanOrEqualTo(size / data.Length), "every 128 KiB write was sealed while the disk had it");
        await cluster.WaitForAsync(s => s.PagesUnsent == 0 && s.PagesRemote == size / PageSize, "every page on a daemon", ct);

        // A failed write: its sealed copy must never reach the daemon, and the pages read back as before it (from the disk).
        cluster.Disk.FailWrites = true;
        random.NextBytes(data);
        var write = Assert.ThrowsAsync<NbdServerErrorException>(async () => await pool.WriteAsync(slabSize, data, fua: false, ct));
        Assert.That(write!.Error, Is.EqualTo(NbdError.Io));
        cluster.Disk.FailWrites = false;
        await cluster.WaitForAsync(s => s.PagesUnsent == 0, "the write-behind queues drained", ct);
        var back = new byte[size];
        await pool.ReadAsync(0, back, ct);
        Assert.That(back.AsSpan().SequenceEqual(model), Is.True, "the failed write left the device as it was");

        // The same pages written again: sealed as their next version, on the daemon, and read from it.
        random.NextBytes(data);
        await pool.WriteAsync(slabSize, data, fua: false, ct);
        data.CopyTo(model.AsSpan(slabSize));
        await cluster.WaitForAsync(s => s.PagesUnsent == 0 && s.PagesRemote == size / PageSize, "every page on a daemon again", ct);
        await pool.ReadAsync(0, back, ct);
        Assert.Multiple(() =>
        {
            Assert.That(back.AsSpan().SequenceEqual(model), Is.True, "the device after the rewrite");
            Assert.That(cluster.Device.GetStats().OpenFailures, Is.Zero, "no page came back sealed as another version");
        });
    }

    private struct CountingWork : IWhileWriting
    {
        public int Runs;

        public void Run() => Runs++;
    }
}
