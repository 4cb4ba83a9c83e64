using NUnit.Framework;
using Swap.Nbd.Tests.Faults;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Backup;
using Swap.BlockDevices;

namespace Swap.Nbd.Tests.Backup;

[Category(Tier.Integration)]
public sealed class BackupDiskTests
{
    private DirectoryInfo _dir = null!;

    private string FilePath => Path.Combine(_dir.FullName, "backup");

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("swapnbd-backup-");

    [TearDown]
    public void TearDown() => _dir.Delete(recursive: true);

    [Test]
    public void Writes_read_back_at_odd_offsets_and_lengths()
    {
        using var disk = BackupDisk.Open(FilePath, 1 << 20);
        Assert.That(disk.IsBlockDevice, Is.False);
        var random = new Random(7);
        var model = new byte[1 << 20];
        foreach (var (offset, length) in new[] { (0L, 1), (1L, 4095), (4093L, 8200), (123_457L, 70_001), ((1L << 20) - 3, 3) })
        {
            var data = new byte[length];
            random.NextBytes(data);
            disk.Write(offset, data);
            data.CopyTo(model, offset);
        }

        var back = new byte[model.Length];
        disk.Read(0, back);
        Assert.That(back, Is.EqualTo(model));

        var slice = new byte[9999];
        disk.Read(4000, slice);
        Assert.That(slice, Is.EqualTo(model.AsSpan(4000, 9999).ToArray()));
    }

    [Test]
    public void A_missing_file_is_created_and_a_small_one_extended_sparse()
    {
        File.WriteAllBytes(FilePath, new byte[100]);
        using var disk = BackupDisk.Open(FilePath, 8L << 30);
        Assert.That(new FileInfo(FilePath).Length, Is.EqualTo(8L << 30));
        Assert.That(disk.Size, Is.EqualTo(8L << 30));
        Assert.That(disk.AllocatedBytes, Is.LessThan(1 << 20), "extending must not allocate 8 GiB");

        using var fresh = BackupDisk.Open(Path.Combine(_dir.FullName, "fresh"), 4L << 30);
        Assert.That(fresh.AllocatedBytes, Is.Zero);
        var back = new byte[4096];
        back.AsSpan().Fill(1);
        fresh.Read((4L << 30) - 4096, back);
        Assert.That(back, Is.All.EqualTo(0));
    }

    [Test]
    public void A_larger_file_keeps_its_length_and_data()
    {
        var data = new byte[3 << 20];
        new Random(3).NextBytes(data);
        File.WriteAllBytes(FilePath, data);
        using var disk = BackupDisk.Open(FilePath, 1 << 20);
        Assert.That(disk.Size, Is.EqualTo(1 << 20));
        Assert.That(new FileInfo(FilePath).Length, Is.EqualTo(3 << 20));
        var back = new byte[1 << 20];
        disk.Read(0, back);
        Assert.That(back, Is.EqualTo(data.AsSpan(0, 1 << 20).ToArray()));
    }

    [Test]
    public void Discard_punches_a_hole_and_the_range_reads_back_as_zeroes()
    {
        using var disk = BackupDisk.Open(FilePath, 4 << 20);
        var data = new byte[4 << 20];
        new Random(5).NextBytes(data);
        disk.Write(0, data);
        disk.Flush();
        var before = disk.AllocatedBytes;
        Assert.That(before, Is.GreaterThanOrEqualTo(4L << 20));

        // Unaligned on both ends: the edges are zeroed by writing, the 2 MiB-ish middle is punched.
        const long Offset = 1_000_001;
        const long Length = 2_500_000;
        disk.Discard(Offset, Length);

        Assert.That(disk.AllocatedBytes, Is.LessThanOrEqualTo(before - (2L << 20)));
        var back = new byte[data.Length];
        disk.Read(0, back);
        Assert.That(back.AsSpan(0, (int)Offset).ToArray(), Is.EqualTo(data.AsSpan(0, (int)Offset).ToArray()), "bytes before the range are kept");
        Assert.That(back.AsSpan((int)Offset, (int)Length).ContainsAnyExcept((byte)0), Is.False, "the range reads as zeroes");
        Assert.That(back.AsSpan((int)(Offset + Length)).ToArray(), Is.EqualTo(data.AsSpan((int)(Offset + Length)).ToArray()), "bytes after the range are kept");
    }

    [Test]
    public void Discard_of_a_range_inside_one_block_zeroes_only_that_range()
    {
        using var disk = BackupDisk.Open(FilePath, 1 << 16);
        var data = new byte[1 << 16];
        data.AsSpan().Fill(0xAB);
        disk.Write(0, data);
        disk.Discard(5000, 100);
        disk.Discard(100, 0);
        var back = new byte[data.Length];
        disk.Read(0, back);
        Assert.That(back.AsSpan(0, 5000).ToArray(), Is.All.EqualTo(0xAB));
        Assert.That(back.AsSpan(5000, 100).ToArray(), Is.All.EqualTo(0));
        Assert.That(back.AsSpan(5100).ToArray(), Is.All.EqualTo(0xAB));
    }

    [Test]
    public void Flush_succeeds_on_a_file()
    {
        using var disk = BackupDisk.Open(FilePath, 1 << 20);
        disk.Write(4096, new byte[] { 1, 2, 3 });
        Assert.That(disk.Flush, Throws.Nothing);
    }

    [Test]
    public void Every_fault_point_throws_an_io_error_naming_the_disk_and_clears_at_run_time()
    {
        var real = BackupDisk.Open(FilePath, 1 << 20);
        using var disk = new FaultyBackupStore(real);
        Assert.That(disk.Inner, Is.SameAs(real));
        var buffer = new byte[512];

        disk.FailReads = true;
        var read = Assert.Throws<BlockDeviceException>(() => disk.Read(8192, buffer));
        Assert.That(read.Error, Is.EqualTo(BlockDeviceError.Io));
        Assert.That(read.Message, Is.EqualTo($"backup disk {FilePath}: read of 512 bytes at offset 8192 failed: injected fault (FailReads)"));
        disk.Write(0, buffer);
        disk.FailReads = false;
        disk.Read(0, buffer);

        disk.FailWrites = true;
        var write = Assert.Throws<BlockDeviceException>(() => disk.Write(4096, buffer));
        Assert.That(write.Error, Is.EqualTo(BlockDeviceError.Io));
        Assert.That(write.Message, Does.Contain(FilePath).And.Contain("offset 4096").And.Contain("512 bytes"));
        var discard = Assert.Throws<BlockDeviceException>(() => disk.Discard(0, 4096));
        Assert.That(discard.Error, Is.EqualTo(BlockDeviceError.Io));
        disk.FailWrites = false;
        disk.Write(4096, buffer);

        disk.FailFlush = true;
        var flush = Assert.Throws<BlockDeviceException>(disk.Flush);
        Assert.That(flush.Error, Is.EqualTo(BlockDeviceError.Io));
        Assert.That(flush.Message, Does.Contain(FilePath));
        disk.FailFlush = false;
        disk.Flush();
    }

    [Test]
    public void A_range_outside_the_disk_is_a_caller_bug()
    {
        using var disk = BackupDisk.Open(FilePath, 8192);
        Assert.That(() => disk.Write(8000, new byte[200]), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => disk.Read(-1, new byte[1]), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => disk.Discard(0, 8193), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(new FileInfo(FilePath).Length, Is.EqualTo(8192), "nothing was written past the end");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task A_file_truncated_behind_the_disks_back_fails_reads_with_io(CancellationToken ct)
    {
        using var disk = BackupDisk.Open(FilePath, 1 << 20);

        // The disk holds an exclusive flock, so the truncation comes from another process, as it would in real life.
        var truncate = await ExternalTool.RunAsync("truncate", "coreutils", ["-s", "4096", FilePath], TimeSpan.FromSeconds(20), ct);
        Assert.That(truncate.ExitCode, Is.Zero, truncate.ToString());

        var ex = Assert.Throws<BlockDeviceException>(() => disk.Read(0, new byte[8192]));
        Assert.That(ex.Error, Is.EqualTo(BlockDeviceError.Io));
        Assert.That(ex.Message, Is.EqualTo($"backup disk {FilePath}: read of 8192 bytes at offset 0 failed: unexpected end of file after 4096 bytes (was the file truncated?)"));
    }

    [Test]
    public void A_directory_is_refused_with_the_fix()
    {
        var ex = Assert.Throws<BackupDiskException>(() => BackupDisk.Open(_dir.FullName, 1 << 20));
        Assert.That(ex.Message, Is.EqualTo($"backup disk {_dir.FullName}: is a directory; give a file path inside it (e.g. {_dir.FullName}/swapnbd.backup) or a block device"));
    }

    [Test]
    public void A_missing_directory_is_refused_with_the_fix()
    {
        var path = Path.Combine(_dir.FullName, "no-such-dir", "backup");
        var ex = Assert.Throws<BackupDiskException>(() => BackupDisk.Open(path, 1 << 20));
        Assert.That(ex.Message, Is.EqualTo($"backup disk {path}: the directory does not exist; create it or choose another path"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task An_unwritable_file_is_refused(CancellationToken ct)
    {
        // Tests run as root, which ignores permission bits; an immutable file is refused even to root.
        File.WriteAllBytes(FilePath, new byte[4096]);
        var chattr = await ExternalTool.RunAsync("chattr", "e2fsprogs", ["+i", FilePath], TimeSpan.FromSeconds(20), ct);
        if (chattr.ExitCode != 0)
        {
            Assert.Ignore("the temporary directory's file system has no immutable attribute: " + chattr.Stderr);
        }

        try
        {
            var ex = Assert.Throws<BackupDiskException>(() => BackupDisk.Open(FilePath, 1 << 20));
            Assert.That(ex.Message, Does.StartWith($"backup disk {FilePath}: cannot open for reading and writing (").And.EndWith("); give a writable regular file or block device"));
            Assert.That(new FileInfo(FilePath).Length, Is.EqualTo(4096));
        }
        finally
        {
            await ExternalTool.RunAsync("chattr", "e2fsprogs", ["-i", FilePath], TimeSpan.FromSeconds(20), CancellationToken.None);
        }
    }

    [Test]
    public void A_character_device_is_refused()
    {
        var ex = Assert.Throws<BackupDiskException>(() => BackupDisk.Open("/dev/null", 1 << 20));
        Assert.That(ex.Message, Is.EqualTo("backup disk /dev/null: is neither a regular file nor a block device; give a file path or a partition"));
    }

    [Test]
    public void A_mistyped_device_name_does_not_create_a_file_in_dev()
    {
        const string Path = "/dev/swapnbd-no-such-partition";
        var ex = Assert.Throws<BackupDiskException>(() => BackupDisk.Open(Path, 1 << 20));
        Assert.That(ex.Message, Does.StartWith($"backup disk {Path}: no such device"));
        Assert.That(File.Exists(Path), Is.False);
    }

    [Test]
    public void A_second_open_of_the_same_disk_is_refused()
    {
        using var first = BackupDisk.Open(FilePath, 1 << 20);
        var ex = Assert.Throws<BackupDiskException>(() => BackupDisk.Open(FilePath, 1 << 20));
        Assert.That(ex.Message, Does.StartWith($"backup disk {FilePath}: cannot open").And.Contain("another swapnbd-server"));
    }

    [Test]
    [Category("Root")]
    [CancelAfter(60_000)]
    public async Task A_block_device_smaller_than_the_export_is_refused_and_a_large_enough_one_used(CancellationToken ct)
    {
        if (Environment.UserName != "root" || !File.Exists("/dev/loop-control"))
        {
            Assert.Ignore("needs root and loop devices");
        }

        var image = Path.Combine(_dir.FullName, "loop.img");
        await using (var f = File.Create(image))
        {
            f.SetLength(4 << 20);
        }

        var attach = await ExternalTool.RunAsync("losetup", "mount", ["-f", "--show", image], TimeSpan.FromSeconds(30), ct);
        Assert.That(attach.ExitCode, Is.Zero, attach.ToString());
        var device = attach.Stdout.Trim();
        try
        {
            var ex = Assert.Throws<BackupDiskException>(() => BackupDisk.Open(device, 12L << 30));
            Assert.That(ex.Message, Is.EqualTo($"backup disk {device}: 4MiB, need 12GiB; give a partition at least the export size or export less"));

            using var disk = BackupDisk.Open(device, 4 << 20);
            Assert.That(disk.IsBlockDevice, Is.True);
            var data = new byte[3 * 4096];
            new Random(11).NextBytes(data);
            disk.Write(4096, data);
            disk.Flush();
            // Unaligned edges are written as zeroes, the aligned block between them punched through the device.
            disk.Discard(4096 + 100, 2 * 4096);
            var back = new byte[data.Length];
            disk.Read(4096, back);
            Assert.That(back.AsSpan(0, 100).ToArray(), Is.EqualTo(data.AsSpan(0, 100).ToArray()));
            Assert.That(back.AsSpan(100, 2 * 4096).ContainsAnyExcept((byte)0), Is.False);
            Assert.That(back.AsSpan(100 + (2 * 4096)).ToArray(), Is.EqualTo(data.AsSpan(100 + (2 * 4096)).ToArray()));
        }
        finally
        {
            var detach = await ExternalTool.RunAsync("losetup", "mount", ["-d", device], TimeSpan.FromSeconds(30), CancellationToken.None);
            Assert.That(detach.ExitCode, Is.Zero, detach.ToString());
        }
    }
}
