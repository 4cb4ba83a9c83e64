using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Swap.BlockDevices;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Backup;

namespace Swap.Nbd.Tests.Backup;

/// <summary>
/// The backup disk with direct I/O (O_DIRECT) on a real file: data against a reference model for aligned and unaligned
/// reads, writes and discards, concurrent part-block writes, the page cache left alone, and the fallback where the
/// file system refuses O_DIRECT.
/// </summary>
[Category(Tier.Integration)]
public sealed class DirectBackupDiskTests
{
    private DirectIoDirectory _direct = null!;

    /// <summary>A directory where O_DIRECT works (<see cref="DirectIoDirectory"/>).</summary>
    private string DirectDir => _direct.Path;

    [SetUp]
    public async Task SetUp() => _direct = await DirectIoDirectory.CreateAsync("swapnbd-direct-");

    [TearDown]
    public async Task TearDown() => await _direct.DisposeAsync();

    [Test]
    public void Random_aligned_and_unaligned_reads_writes_and_discards_match_a_reference_model()
    {
        const int size = 8 << 20;
        using var disk = BackupDisk.Open(Path.Combine(DirectDir, "backup"), size, BackupIoMode.Direct);
        Assert.That(disk.IsDirect, Is.True);
        Assert.That(disk.DirectAlignment, Is.InRange(512, 65536));
        var model = new byte[size];
        var random = new Random(15);
        // Pinned at an odd address, so even block-aligned requests from it take the bounce path some of the time.
        var scratch = GC.AllocateArray<byte>(4 << 20, pinned: true);
        for (var step = 0; step < 600; step++)
        {
            var aligned = random.Next(2) == 0;
            var length = aligned ? random.Next(1, 257) * 4096 : random.Next(1, 300_000);
            var offset = aligned ? random.NextInt64(0, (size - length) / 4096 + 1) * 4096 : random.NextInt64(0, size - length + 1);
            var skew = random.Next(2) == 0 ? 0 : random.Next(1, 64);
            var buffer = scratch.AsSpan(skew, length);
            switch (random.Next(5))
            {
                case 0 or 1:
                    random.NextBytes(buffer);
                    disk.Write(offset, buffer);
                    buffer.CopyTo(model.AsSpan((int)offset));
                    break;
                case 2 or 3:
                    disk.Read(offset, buffer);
                    Assert.That(buffer.SequenceEqual(model.AsSpan((int)offset, length)), Is.True, $"step {step}: read {offset}+{length}");
                    break;
                default:
                    disk.Discard(offset, length);
                    model.AsSpan((int)offset, length).Clear();
                    break;
            }
        }

        var all = new byte[size];
        disk.Read(0, all);
        Assert.That(all.AsSpan().SequenceEqual(model), Is.True, "the whole disk against the model");
        disk.Flush();

        // What reached the file is what a buffered reader (or the next server) sees.
        disk.Dispose();
        Assert.That(File.ReadAllBytes(Path.Combine(DirectDir, "backup")).AsSpan().SequenceEqual(model), Is.True, "the file read buffered");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Concurrent_writes_of_different_sectors_of_the_same_blocks_lose_nothing(CancellationToken ct)
    {
        // Read-modify-write of a 4 KiB block for a 512-byte write: without locking, two writers of one block each
        // write back the other's old sector.
        const int blocks = 16;
        const int writers = 4;
        using var disk = BackupDisk.Open(Path.Combine(DirectDir, "backup"), blocks * 4096L, BackupIoMode.Direct);
        Assert.That(disk.IsDirect, Is.True);
        var unit = Math.Min(512, disk.DirectAlignment / 2); // always less than a block: every write is read-modify-write
        var units = blocks * 4096 / unit;
        var model = new byte[blocks * 4096];
        var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(() =>
        {
            var random = new Random(w);
            var data = new byte[unit];
            for (var round = 0; round < 3000 && !ct.IsCancellationRequested; round++)
            {
                // Writer w owns the units u with u % writers == w: neighbours in every block belong to the others.
                var u = (random.Next(units / writers) * writers) + w;
                random.NextBytes(data);
                disk.Write((long)u * unit, data);
                lock (model)
                {
                    data.CopyTo(model, u * unit);
                }
            }
        }, ct)).ToArray();
        await Task.WhenAll(tasks);

        var back = new byte[model.Length];
        disk.Read(0, back);
        Assert.That(back.AsSpan().SequenceEqual(model), Is.True, "a concurrent part-block write lost another's bytes");
    }

    [Test]
    public void Direct_writes_and_reads_leave_the_page_cache_alone_where_buffered_ones_fill_it()
    {
        const int size = 64 << 20;
        var data = GC.AllocateArray<byte>(1 << 20, pinned: true);
        new Random(3).NextBytes(data);

        var directPath = Path.Combine(DirectDir, "direct");
        using (var disk = BackupDisk.Open(directPath, size, BackupIoMode.Direct))
        {
            Assert.That(disk.IsDirect, Is.True);
            for (var offset = 0L; offset < size; offset += data.Length)
            {
                disk.Write(offset + 100, data.AsSpan(0, data.Length - 100)); // unaligned: through the bounce buffers
                disk.Read(offset, data);
            }

            disk.Flush();
        }

        var bufferedPath = Path.Combine(DirectDir, "buffered");
        using (var disk = BackupDisk.Open(bufferedPath, size, BackupIoMode.Buffered))
        {
            Assert.That(disk.IsDirect, Is.False);
            for (var offset = 0L; offset < size; offset += data.Length)
            {
                disk.Write(offset, data);
            }

            disk.Flush();
        }

        var direct = PageCacheResidency.Bytes(directPath);
        var buffered = PageCacheResidency.Bytes(bufferedPath);
        TestContext.Out.WriteLine($"page cache after 64 MiB written: direct {direct} bytes, buffered {buffered} bytes");
        Assert.That(buffered, Is.GreaterThan(size / 2), "buffered writes stay in the page cache (the control)");
        Assert.That(direct, Is.LessThan(1 << 20), "direct I/O put the backup file in the page cache");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task A_file_system_without_O_DIRECT_falls_back_to_buffered_with_a_warning_or_refuses_direct(CancellationToken ct)
    {
        // ramfs refuses O_DIRECT (EINVAL); tmpfs takes it since Linux 6.6, so it is no longer the example.
        await using var ramfs = await ScratchMount.RamfsAsync(ct);
        var path = Path.Combine(ramfs.Path, "backup");
        using var logs = new RecordingLoggerProvider();
        using (var disk = BackupDisk.Open(path, 1 << 20, BackupIoMode.Auto, logs.CreateLogger("backup")))
        {
            Assert.That(disk.IsDirect, Is.False);
            var data = new byte[5000];
            new Random(1).NextBytes(data);
            disk.Write(100, data);
            var back = new byte[5000];
            disk.Read(100, back);
            Assert.That(back, Is.EqualTo(data));
        }

        var warning = logs.Entries.Single(e => e.EventId.Id == EventIds.BackupDirectRefused);
        Assert.That(warning.Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(warning.Message, Does.Contain(path).And.Contain("O_DIRECT").And.Contain("page cache"));

        var refused = Assert.Throws<BackupDiskException>(() => BackupDisk.Open(path, 1 << 20, BackupIoMode.Direct));
        Assert.That(refused!.Message, Does.Contain("BackupIo=direct").And.Contain("O_DIRECT").And.Contain("--backup-io auto"));
        Assert.That(File.Exists(path), Is.True, "refusing direct I/O must not delete an existing backup file");
    }

    [TestCase(BackupIoMode.Direct)]
    [TestCase(BackupIoMode.Buffered)]
    [CancelAfter(60_000)]
    public async Task A_full_file_system_is_no_space_naming_the_disk_and_what_was_written_reads_back(BackupIoMode mode, CancellationToken ct)
    {
        // A sparse backup file larger than the file system under it: the disk fills up as pages arrive (issue 15, item 5).
        await using var small = await ScratchMount.Ext4Async(16L << 20, ct);
        var path = Path.Combine(small.Path, "backup");
        using var disk = BackupDisk.Open(path, 64L << 20, mode);
        var random = new Random(28);
        var written = new List<(long Offset, byte[] Data)>();
        BlockDeviceException? full = null;
        for (var offset = 0L; offset < disk.Size && full is null; offset += 1 << 20)
        {
            var data = new byte[1 << 20];
            random.NextBytes(data);
            try
            {
                disk.Write(offset, data);
                written.Add((offset, data));
            }
            catch (BlockDeviceException ex)
            {
                full = ex;
            }
        }

        Assert.That(full, Is.Not.Null, "64 MiB fit on a 16 MiB file system");
        Assert.That(full!.Error, Is.EqualTo(BlockDeviceError.NoSpace), "a full disk is ENOSPC for the NBD client, not EIO");
        Assert.That(full.Message, Does.Contain(path).And.Contain("write of").And.Contain("No space left on device"));
        Assert.That(written, Has.Count.GreaterThan(4));

        // Rewriting blocks the file already has needs no new space; everything written before the disk filled is intact.
        var (lastOffset, lastData) = written[^1];
        random.NextBytes(lastData);
        disk.Write(lastOffset, lastData);
        var back = new byte[1 << 20];
        foreach (var (offset, data) in written)
        {
            disk.Read(offset, back);
            Assert.That(back.AsSpan().SequenceEqual(data), Is.True, $"the MiB at {offset} after the disk filled");
        }
    }

    /// <summary>The one errno mapping that writes, reads, discards and fdatasync share: fdatasync is where a thin or
    /// network file system reports a full disk, and the client must learn ENOSPC there too, not EIO.</summary>
    [TestCase(28, BlockDeviceError.NoSpace, TestName = "ENOSPC_is_no_space")]
    [TestCase(122, BlockDeviceError.NoSpace, TestName = "EDQUOT_is_no_space")]
    [TestCase(30, BlockDeviceError.ReadOnly, TestName = "EROFS_is_read_only")]
    [TestCase(5, BlockDeviceError.Io, TestName = "EIO_is_an_io_error")]
    [TestCase(22, BlockDeviceError.Io, TestName = "EINVAL_is_an_io_error")]
    public void An_errno_from_the_disk_maps_to_what_the_client_is_told(int errno, BlockDeviceError expected) =>
        Assert.That(BackupDisk.ErrorOf(errno), Is.EqualTo(expected));
}
