using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Slabs.Remote;

namespace Swap.Nbd.Tests.Slabs;

// These tests hold a slot's ValueTask and read its result by hand, once each, after completing the slot themselves:
// that is the pool's contract under test, which the analyzer's general advice (await it at once) cannot see.
#pragma warning disable CA2012

/// <summary>
/// <see cref="RequestSlotPool"/> on its own: capacity, request ids that name their slot and use, the final sweep, and
/// reuse without allocation.
/// </summary>
[Category(Tier.Unit), Parallelizable(ParallelScope.Self)]
public sealed class RequestSlotPoolTests
{
    [Test]
    public void Capacity_comes_back_only_when_the_result_is_read()
    {
        var pool = new RequestSlotPool(4);
        var tasks = new List<ValueTask<DaemonReply>>();
        for (var i = 0; i < 4; i++)
        {
            Assert.That(pool.TryReserve(), Is.True);
            tasks.Add(Start(pool, DaemonOpcode.Write));
        }

        Assert.That(pool.TryReserve(), Is.False, "every slot is taken");
        Assert.That(pool.Reserve(TimeSpan.Zero), Is.False);

        var slot = pool.Pending(RequestIdOf(pool, 2))!;
        Assert.That(slot.TryClaim(), Is.True);
        slot.Complete(new DaemonReply(DaemonStatus.Ok, 0, default, default));
        Assert.That(pool.TryReserve(), Is.False, "a completed slot is still the caller's until it reads the result");

        Assert.That(tasks[2].Result.Ok, Is.True);
        Assert.That(pool.TryReserve(), Is.True, "reading the result returns the slot");
        Assert.That(pool.Take(), Is.SameAs(slot), "the returned slot is the free one");
    }

    [Test]
    public void A_request_id_names_its_slot_and_its_use()
    {
        var pool = new RequestSlotPool(8);
        Assert.That(pool.TryReserve(), Is.True);
        var task = Start(pool, DaemonOpcode.Read);
        var slot = pool.Slots[0];
        var first = slot.RequestId;
        Assert.Multiple(() =>
        {
            Assert.That(first & 0xFFFF, Is.EqualTo((ulong)slot.Index));
            Assert.That(first >> 16, Is.Not.Zero, "a sequence above the slot index");
            Assert.That(pool.Pending(first), Is.SameAs(slot));
            Assert.That(pool.Pending(first + (1 << 16)), Is.Null, "another use of the same slot");
            Assert.That(pool.Pending(first + 1), Is.Null, "another slot, which is free");
            Assert.That(pool.Pending(first | 0xFFFF), Is.Null, "an index beyond the pool");
        });

        Assert.That(slot.TryClaim(), Is.True);
        slot.Complete(new DaemonReply(DaemonStatus.Ok, 0, default, default));
        Assert.That(pool.Pending(first), Is.Null, "a completed request is not pending");
        _ = task.Result;

        Assert.That(pool.TryReserve(), Is.True);
        _ = Start(pool, DaemonOpcode.Read);
        Assert.Multiple(() =>
        {
            Assert.That(slot.RequestId, Is.Not.EqualTo(first), "the next use of the slot has a new id");
            Assert.That(pool.Pending(first), Is.Null, "a late reply to the earlier use is not matched");
            Assert.That(pool.Pending(slot.RequestId), Is.SameAs(slot));
        });
    }

    [Test]
    public void The_sweep_fails_every_pending_slot_once()
    {
        var pool = new RequestSlotPool(4);
        Assert.That(pool.TryReserve() && pool.TryReserve(), Is.True);
        var failed = Start(pool, DaemonOpcode.Stats);
        var claimed = Start(pool, DaemonOpcode.Stats);
        var claimedSlot = pool.Pending(RequestIdOf(pool, 1))!;
        Assert.That(claimedSlot.TryClaim(), Is.True, "the receive thread claimed this one first");

        pool.FailPending(new DaemonLinkException("gone"));

        Assert.Multiple(() =>
        {
            Assert.That(failed.IsFaulted, Is.True);
            Assert.That(claimed.IsCompleted, Is.False, "a claimed slot is left to its claimer");
        });
        Assert.That(() => failed.Result, Throws.TypeOf<DaemonLinkException>());
        claimedSlot.Complete(new DaemonReply(DaemonStatus.Stale, 0, default, default));
        Assert.That(claimed.Result.Status, Is.EqualTo(DaemonStatus.Stale));
        Assert.That(pool.TryReserve() && pool.TryReserve() && pool.TryReserve() && pool.TryReserve(), Is.True, "both slots came back");
    }

    [Test]
    public void Reusing_a_slot_allocates_nothing()
    {
        var pool = new RequestSlotPool(2);
        var reply = new DaemonReply(DaemonStatus.Ok, 0, default, default);
        RoundTrip(pool, reply);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            RoundTrip(pool, reply);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    [Test]
    public void A_pool_fits_its_slot_index_in_16_bits()
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => new RequestSlotPool(0), Throws.TypeOf<ArgumentOutOfRangeException>());
            Assert.That(() => new RequestSlotPool(RequestSlotPool.MaxSize + 1), Throws.TypeOf<ArgumentOutOfRangeException>());
            Assert.That(new RequestSlotPool(DaemonLink.MaxInFlight).Slots.Length, Is.EqualTo(DaemonLink.MaxInFlight));
        });
    }

    private static void RoundTrip(RequestSlotPool pool, DaemonReply reply)
    {
        if (!pool.TryReserve())
        {
            Assert.Fail("no capacity");
        }

        var slot = pool.Take();
        var task = slot.Task;
        slot.Begin(pool.NextSequence(), DaemonOpcode.Write, default, 1);
        if (!pool.Pending(slot.RequestId)!.TryClaim())
        {
            Assert.Fail("not claimable");
        }

        slot.Complete(reply);
        _ = task.Result;
    }

    /// <summary>Takes a slot the way the link does and begins a request on it, with a deadline that never comes.</summary>
    private static ValueTask<DaemonReply> Start(RequestSlotPool pool, DaemonOpcode opcode)
    {
        var slot = pool.Take();
        var task = slot.Task;
        slot.Begin(pool.NextSequence(), opcode, default, long.MaxValue);
        return task;
    }

    /// <summary>The id of the pending request on slot <paramref name="index"/>.</summary>
    private static ulong RequestIdOf(RequestSlotPool pool, int index) => pool.Slots[index].RequestId;
}
