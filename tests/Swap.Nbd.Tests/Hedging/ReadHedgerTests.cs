using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Faults;
using Swap.Slabs.Backup;
using Swap.Slabs.Hedging;
using Swap.Slabs.Mapping;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Hedging;

// These tests hold a request slot's ValueTask and complete the slot by hand, as the link's receive thread would:
// the hedged read consumes it exactly once, which the analyzer's general advice cannot see.
#pragma warning disable CA2012

/// <summary>
/// <see cref="ReadHedger"/> and <see cref="HedgedRead"/> on a fake clock, with request slots completed by hand and a
/// real backup file: the bound, who wins, that the loser's bytes never reach the caller, that every entry and buffer
/// comes back only once both sides have ended, and that the unhedged path allocates nothing.
/// </summary>
[Category(Tier.Unit), NonParallelizable]
public sealed class ReadHedgerTests
{
    private const int Length = 8192;
    private const long DiskOffset = 3 * 4096;
    private static readonly TimeSpan Floor = TimeSpan.FromMicroseconds(100);
    private static readonly TimeSpan Cap = TimeSpan.FromMilliseconds(50);

    private string _directory = "";
    private FaultyBackupStore _store = null!;
    private ReportedDisk _disk = null!;
    private FakeTimeProvider _time = null!;
    private RequestSlotPool _slots = null!;

    [SetUp]
    public void SetUp()
    {
        _directory = Path.Combine(Path.GetTempPath(), "swapnbd-hedge-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_directory);
        _store = new FaultyBackupStore(BackupDisk.Open(Path.Combine(_directory, "backup.img"), 1 << 20));
        var onDisk = new byte[Length];
        Array.Fill(onDisk, (byte)0xD1);
        _store.Write(DiskOffset, onDisk);
        _disk = new ReportedDisk(_store, new SlabMetrics(TimeProvider.System), NullLogger.Instance, TimeProvider.System);
        _time = new FakeTimeProvider();
        _slots = new RequestSlotPool(16);
    }

    [TearDown]
    public void TearDown()
    {
        // The same file under both (disposing a SafeHandle twice is harmless).
        _disk.Dispose();
        _store.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Test]
    public void The_bound_is_the_links_median_times_the_multiplier_within_the_floor_and_the_cap()
    {
        using var hedger = NewHedger();
        var latency = new ReadLatency(_time.TimestampFrequency);
        Assert.That(hedger.Bound(latency), Is.EqualTo(Cap), "a link without enough samples gets the cap");

        Record(latency, 1000, TimeSpan.FromMicroseconds(20));
        Assert.That(hedger.Bound(latency), Is.EqualTo(Floor), "a fast link gets the floor");

        Record(latency, 10 * ReadLatency.Window, TimeSpan.FromMicroseconds(200));
        Assert.That(hedger.Bound(latency), Is.InRange(TimeSpan.FromMicroseconds(ReadHedger.Multiplier * 200), TimeSpan.FromMicroseconds(1.25 * ReadHedger.Multiplier * 200)));

        Record(latency, 10 * ReadLatency.Window, TimeSpan.FromMilliseconds(80));
        Assert.That(hedger.Bound(latency), Is.EqualTo(Cap), "a slow link gets the cap");
    }

    [Test]
    public async Task A_daemon_that_answers_within_the_bound_wins_and_nothing_is_read_from_the_disk()
    {
        using var hedger = NewHedger();
        var (slot, read) = StartRead(hedger, out var hedge);
        _time.Advance(Floor - TimeSpan.FromTicks(1));
        Assert.That(hedger.Sweep(_time.GetTimestamp()), Is.EqualTo(_time.GetTimestamp() + 1), "not yet: the deadline is one tick ahead");
        Assert.That(hedger.Started, Is.Zero);

        Land(slot, 0xDA);
        var outcome = await read;
        Assert.Multiple(() =>
        {
            Assert.That(outcome, Is.EqualTo(new HedgeOutcome(HedgeWinner.Daemon, null)));
            Assert.That(hedge.DaemonBuffer.AsSpan(0, Length).ToArray(), Is.All.EqualTo(0xDA));
            Assert.That(hedger.ArmedCount, Is.Zero);
            Assert.That((hedger.Started, hedger.WonByDisk, hedger.WonByDaemon), Is.EqualTo((0L, 0L, 0L)));
        });

        hedge.Release();
        Assert.That(hedger.FreeEntries, Is.EqualTo(4), "the entry is back once the caller lets go");
    }

    [Test]
    public async Task Past_the_bound_the_disk_answers_and_the_late_daemon_reply_is_dropped()
    {
        using var hedger = NewHedger();
        var (slot, read) = StartRead(hedger, out var hedge);
        _time.Advance(Floor);
        Assert.That(hedger.Sweep(_time.GetTimestamp()), Is.EqualTo(long.MaxValue), "fired: no deadline left");
        Assert.That(hedger.Started, Is.EqualTo(1));

        var outcome = await read;
        Assert.That(outcome, Is.EqualTo(new HedgeOutcome(HedgeWinner.Disk, null)));
        var answer = hedge.DiskBuffer.AsSpan(0, Length).ToArray();
        Assert.That(answer, Is.All.EqualTo(0xD1), "the disk's bytes");
        hedge.Release();
        Assert.That(hedger.FreeEntries, Is.EqualTo(3), "the daemon may still write its buffer: the entry stays out");

        Land(slot, 0xDA);
        // The disk side lets go once the caller's continuation, which ran on its thread, has returned.
        await WaitForAsync(() => hedger.FreeEntries == 4);
        Assert.Multiple(() =>
        {
            Assert.That((hedger.WonByDisk, hedger.WonByDaemon, hedger.DaemonDropped), Is.EqualTo((1L, 0L, 1L)));
            Assert.That(answer, Is.All.EqualTo(0xD1), "the caller's answer is untouched by the late reply");
        });
    }

    [Test]
    public async Task A_daemon_that_fails_before_the_bound_ends_the_race_without_bytes()
    {
        using var hedger = NewHedger();
        var (slot, read) = StartRead(hedger, out var hedge);
        Assert.That(slot.TryClaim(), Is.True);
        slot.Complete(new DaemonReply(DaemonStatus.Stale, 0, default, default));
        var outcome = await read;
        hedge.Release();
        Assert.That(outcome, Is.EqualTo(new HedgeOutcome(HedgeWinner.Neither, DaemonStatus.Stale)), "the caller reads the disk and unmaps the slab");
        Assert.That(hedger.FreeEntries, Is.EqualTo(4));

        (slot, read) = StartRead(hedger, out hedge);
        Assert.That(slot.TryClaim(), Is.True);
        slot.Fail(new DaemonLinkException("link down"));
        outcome = await read;
        hedge.Release();
        Assert.That(outcome, Is.EqualTo(new HedgeOutcome(HedgeWinner.Neither, null)));
        Assert.That((hedger.Started, hedger.FreeEntries, hedger.ArmedCount), Is.EqualTo((0L, 4, 0)));
    }

    [Test]
    public async Task A_daemon_that_fails_after_the_bound_leaves_the_answer_to_the_disk()
    {
        using var hedger = NewHedger();
        _store.FailReads = true;
        var (slot, read) = StartRead(hedger, out var hedge);
        _time.Advance(Floor);
        hedger.Sweep(_time.GetTimestamp());
        // The disk side fails on the thread pool, before or after the daemon refuses: either way neither has the bytes.
        Assert.That(slot.TryClaim(), Is.True);
        slot.Complete(new DaemonReply(DaemonStatus.Stale, 0, default, default));
        var outcome = await read;
        hedge.Release();
        Assert.That(outcome, Is.EqualTo(new HedgeOutcome(HedgeWinner.Neither, DaemonStatus.Stale)), "both failed: the caller reads the disk itself and reports its error");
        await WaitForAsync(() => hedger.FreeEntries == 4);
    }

    [Test]
    public async Task A_daemon_that_answers_after_the_bound_wins_while_the_disk_has_not_answered()
    {
        using var hedger = NewHedger();
        _store.FailReads = true;
        var (slot, read) = StartRead(hedger, out var hedge);
        _time.Advance(Floor);
        hedger.Sweep(_time.GetTimestamp());
        Land(slot, 0xDA);
        var outcome = await read;
        Assert.That(outcome, Is.EqualTo(new HedgeOutcome(HedgeWinner.Daemon, null)));
        Assert.That(hedge.DaemonBuffer.AsSpan(0, Length).ToArray(), Is.All.EqualTo(0xDA));
        hedge.Release();
        await WaitForAsync(() => hedger.FreeEntries == 4);
        Assert.That((hedger.Started, hedger.WonByDaemon, hedger.WonByDisk), Is.EqualTo((1L, 1L, 0L)));
    }

    /// <summary>
    /// The daemon answering at the instant the sweeper fires its read (found by bench.sh at 2 % loss: the server died
    /// returning a buffer twice). The reply lands right after the sweep takes the race to Hedged and before the disk
    /// side starts, and the caller lets go at once, on the reply's thread: before the fix the caller and the daemon
    /// side were the last holders, the entry went back to the pool with its buffers, and the disk side then read into
    /// and released an entry that was no longer its own.
    /// </summary>
    [Test]
    public async Task A_reply_landing_while_the_sweep_fires_its_read_leaves_the_entry_to_the_disk_side()
    {
        using var hedger = NewHedger();
        var (slot, read) = StartRead(hedger, out var hedge);
        HedgeOutcome? outcome = null;
        byte[]? bytes = null;
        var caller = CallerAsync();
        hedger.AfterFireForTests = () =>
        {
            hedger.AfterFireForTests = null;
            Land(slot, 0xDA);
            Assert.That(outcome, Is.Not.Null, "the caller was answered on the reply's thread and let go");
        };
        _time.Advance(Floor);
        Assert.DoesNotThrow(() => hedger.Sweep(_time.GetTimestamp()), "the disk side ends on an entry that is still its own");
        await caller;
        Assert.That(outcome, Is.EqualTo(new HedgeOutcome(HedgeWinner.Daemon, null)));
        Assert.That(bytes, Is.All.EqualTo(0xDA));
        await WaitForAsync(() => hedger.FreeEntries == 4);
        Assert.That((hedger.Started, hedger.WonByDaemon, hedger.WonByDisk), Is.EqualTo((1L, 1L, 0L)));

        // And the entry is whole for its next use.
        var (again, next) = StartRead(hedger, out var reused);
        Land(again, 0xDB);
        Assert.That((await next).Winner, Is.EqualTo(HedgeWinner.Daemon));
        Assert.That(reused.DaemonBuffer.AsSpan(0, Length).ToArray(), Is.All.EqualTo(0xDB));
        reused.Release();
        await WaitForAsync(() => hedger.FreeEntries == 4);

        async Task CallerAsync()
        {
            outcome = await read;
            bytes = hedge.DaemonBuffer.AsSpan(0, Length).ToArray();
            hedge.Release();
        }
    }

    [Test]
    public void A_read_finds_no_entry_when_all_are_taken()
    {
        using var hedger = NewHedger();
        var taken = Enumerable.Range(0, 4).Select(_ => hedger.TryRent(Length)).ToList();
        Assert.That(taken, Has.None.Null);
        Assert.That(hedger.TryRent(Length), Is.Null, "the read goes unhedged");
        taken[0]!.Release();
        Assert.That(hedger.TryRent(Length), Is.Not.Null, "an entry rented and never started comes back on release");
    }

    [Test]
    public void Hedged_reads_hold_at_most_the_byte_budget_of_daemon_buffers()
    {
        using var hedger = new ReadHedger(_disk, Floor, Cap, _time, entries: 64, sweep: false);
        const int big = 8 << 20;
        var held = Enumerable.Range(0, (int)(ReadHedger.MaxHeldBytes / big)).Select(_ => hedger.TryRent(big)).ToList();
        Assert.That(held, Has.All.Not.Null, "up to the budget");
        Assert.That(hedger.TryRent(big), Is.Null, "a read past the budget goes unhedged, though entries are free");
        Assert.That(hedger.TryRent(Length), Is.Null, "even a small one while the budget is spent");
        held[0]!.Release();
        var again = hedger.TryRent(big);
        Assert.That(again, Is.Not.Null, "a released buffer's bytes count again");
        again!.Release();
        foreach (var entry in held.Skip(1))
        {
            entry!.Release();
        }

        Assert.That(hedger.FreeEntries, Is.EqualTo(64));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task The_sweeper_thread_fires_on_the_fake_clock_and_not_before(CancellationToken ct)
    {
        using var hedger = new ReadHedger(_disk, Floor, Cap, _time, entries: 4, sweep: true);
        var (slot, read) = StartRead(hedger, out var hedge);
        // Two sweeps after the start prove the sweeper looked at the read and let it be.
        var sweeps = hedger.Sweeps;
        await WaitForAsync(() => hedger.Sweeps >= sweeps + 2, ct);
        Assert.That(read.IsCompleted, Is.False, "no disk read before the bound");
        Assert.That(hedger.Started, Is.Zero);

        _time.Advance(Floor);
        var outcome = await read;
        Assert.That(outcome.Winner, Is.EqualTo(HedgeWinner.Disk));
        hedge.Release();
        Land(slot, 0xDA);
        await WaitForAsync(() => hedger.FreeEntries == 4, ct);
    }

    [Test]
    public async Task The_unhedged_path_allocates_nothing()
    {
        using var hedger = NewHedger();
        var others = 0;
        long allocated = 0;
        for (var round = 0; round < 2; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 1000; i++)
            {
                var (slot, read) = StartRead(hedger, out var hedge);
                Land(slot, 0xDA);
                var outcome = await read;
                hedge.Release();
                others += outcome.Winner == HedgeWinner.Daemon ? 0 : 1;
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.That(others, Is.Zero, "the daemon answered every read");
        Assert.That(allocated, Is.Zero, "bytes allocated by 1000 reads after a warm-up round");
    }

    private ReadHedger NewHedger() => new(_disk, Floor, Cap, _time, entries: 4, sweep: false);

    /// <summary>Rents an entry, sends a "READ" on a request slot into its daemon buffer, starts the race with the floor as bound.</summary>
    private (DaemonRequest Slot, ValueTask<HedgeOutcome> Read) StartRead(ReadHedger hedger, out HedgedRead hedge)
    {
        hedge = hedger.TryRent(Length) ?? throw new InvalidOperationException("no free entry");
        if (!_slots.TryReserve())
        {
            throw new InvalidOperationException("no free request slot");
        }

        var slot = _slots.Take();
        slot.Begin(_slots.NextSequence(), DaemonOpcode.Read, hedge.DaemonBuffer.AsMemory(0, Length), long.MaxValue);
        var deadline = _time.GetTimestamp() + (long)(Floor.TotalSeconds * _time.TimestampFrequency);
        return (slot, hedge.Start(slot.Task, deadline, DiskOffset, Length));
    }

    /// <summary>What the receive thread does with an OK reply: writes the slot's destination, then completes it.</summary>
    private static void Land(DaemonRequest slot, byte value)
    {
        if (!slot.TryClaim())
        {
            throw new InvalidOperationException("the slot was completed already");
        }

        slot.Destination.Span.Fill(value);
        slot.Complete(new DaemonReply(DaemonStatus.Ok, 0, default, default));
    }

    private void Record(ReadLatency latency, int count, TimeSpan each)
    {
        var ticks = (long)(each.TotalSeconds * _time.TimestampFrequency);
        for (var i = 0; i < count; i++)
        {
            latency.Record(ticks);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, CancellationToken ct = default)
    {
        for (var i = 0; i < 2000 && !condition(); i++)
        {
            await Task.Delay(5, ct);
        }

        Assert.That(condition(), Is.True, "not reached within 10 s");
    }
}
