using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.BlockDevices;
using Swap.Nbd.Tests.Faults;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Backup;
using Swap.Slabs.Mapping;

namespace Swap.Nbd.Tests.Backup;

/// <summary>
/// The slab layer's view of the backup disk: every failure reaches the caller, is counted, and is logged, at most
/// <see cref="ReportedDisk.LogBurst"/> lines a <see cref="ReportedDisk.LogWindow"/> (the whole-machine test with a failing
/// disk logged 2375 errors in 4.5 minutes before: the kernel retries each failed swap-out), the first line after a
/// held-back stretch saying how many were held back.
/// </summary>
[Category(Tier.Unit)]
public sealed class ReportedDiskTests
{
    [Test]
    public void A_disk_that_keeps_failing_is_logged_a_burst_a_window_and_every_failure_still_throws()
    {
        var directory = Directory.CreateTempSubdirectory("swapnbd-reported-");
        try
        {
            var time = new FakeTimeProvider();
            using var store = new FaultyBackupStore(BackupDisk.Open(Path.Combine(directory.FullName, "backup.img"), 1 << 20)) { FailWrites = true };
            var log = new RecordingLoggerProvider();
            using var disk = new ReportedDisk(store, new SlabMetrics(time), log.CreateLogger("test"), time);
            var page = new byte[4096];

            for (var i = 0; i < 25; i++)
            {
                Assert.Throws<BlockDeviceException>(() => disk.Write(i * 4096L, page), $"write {i} must fail to its caller");
            }

            Assert.That(log.Entries.Count(e => e.EventId.Id == EventIds.BackupDiskError), Is.EqualTo(ReportedDisk.LogBurst));
            Assert.That(log.Entries.Any(e => e.EventId.Id == EventIds.BackupDiskErrorsSuppressed), Is.False, "nothing to report yet");

            time.Advance(ReportedDisk.LogWindow);
            Assert.Throws<BlockDeviceException>(() => disk.Write(0, page));
            var entries = log.Entries.ToList();
            Assert.That(entries.Count(e => e.EventId.Id == EventIds.BackupDiskError), Is.EqualTo(ReportedDisk.LogBurst + 1));
            var summary = entries.Single(e => e.EventId.Id == EventIds.BackupDiskErrorsSuppressed);
            Assert.That(summary.Level, Is.EqualTo(LogLevel.Error));
            Assert.That(summary.Message, Does.Contain("15 more errors were not logged"));
            Assert.That(entries.IndexOf(summary), Is.EqualTo(entries.Count - 2), "the count comes just before the next error it precedes");

            store.FailWrites = false;
            disk.Write(0, page);
            Assert.That(log.Entries, Has.Count.EqualTo(entries.Count), "a write that works logs nothing");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
