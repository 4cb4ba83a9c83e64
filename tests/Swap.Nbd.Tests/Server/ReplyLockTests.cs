using NUnit.Framework;
using Swap.Nbd.Server.Transmission;

namespace Swap.Nbd.Tests.Server;

/// <summary>The connection's reply lock: one holder at a time, every waiter served, cancellation, no allocation.</summary>
[Category(Tier.Unit)]
public sealed class ReplyLockTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task One_blocking_thread_and_many_async_waiters_each_hold_it_alone_and_all_get_it(CancellationToken ct)
    {
        var gate = new ReplyLock();
        var holders = 0;
        var maxHolders = 0;
        long entries = 0;
        void Critical()
        {
            var now = Interlocked.Increment(ref holders);
            InterlockedMax(ref maxHolders, now);
            Thread.SpinWait(50);
            Interlocked.Decrement(ref holders);
            Interlocked.Increment(ref entries);
        }

        const int Rounds = 20_000;
        var blocking = new Thread(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                if (!gate.TryEnter())
                {
                    gate.Enter(CancellationToken.None);
                }

                Critical();
                gate.Exit();
            }
        }) { IsBackground = true };
        blocking.Start();
        var waiters = Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                await gate.EnterAsync(CancellationToken.None);
                Critical();
                gate.Exit();
            }
        }, ct)).ToArray();

        await Task.WhenAll(waiters).WaitAsync(TimeSpan.FromSeconds(50), ct);
        Assert.That(blocking.Join(TimeSpan.FromSeconds(5)), Is.True, "the blocking thread got the lock every time");
        Assert.That(maxHolders, Is.EqualTo(1), "never two holders at once");
        Assert.That(entries, Is.EqualTo(7L * Rounds));
        Assert.That(gate.TryEnter(), Is.True, "free at the end");
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task A_cancelled_async_wait_throws_and_is_skipped_when_the_lock_is_let_go(CancellationToken ct)
    {
        var gate = new ReplyLock();
        Assert.That(gate.TryEnter(), Is.True);
        using var cancel = new CancellationTokenSource();
        var cancelled = gate.EnterAsync(cancel.Token).AsTask();
        var next = gate.EnterAsync(CancellationToken.None).AsTask();
        await cancel.CancelAsync();
        Assert.That(async () => await cancelled, Throws.InstanceOf<OperationCanceledException>());
        gate.Exit();
        await next.WaitAsync(TimeSpan.FromSeconds(5), ct);
        Assert.That(gate.TryEnter(), Is.False, "the second waiter holds it");
        gate.Exit();
        Assert.That(gate.TryEnter(), Is.True);
    }

    [Test]
    [CancelAfter(10_000)]
    public void A_cancelled_blocking_wait_throws_and_leaves_the_lock_to_its_holder(CancellationToken ct)
    {
        var gate = new ReplyLock();
        Assert.That(gate.TryEnter(), Is.True);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        Assert.That(() => gate.Enter(cancel.Token), Throws.InstanceOf<OperationCanceledException>());
        gate.Exit();
        Assert.That(gate.TryEnter(), Is.True, "the cancelled wait was not handed the lock");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Contended_async_waits_allocate_nothing_once_warm(CancellationToken ct)
    {
        var gate = new ReplyLock();
        async Task Contend(int rounds)
        {
            Assert.That(gate.TryEnter(), Is.True);
            var waits = new ValueTask[8];
            for (var r = 0; r < rounds; r++)
            {
                for (var i = 0; i < waits.Length; i++)
                {
#pragma warning disable CA2012 // each is awaited exactly once, below
                    waits[i] = gate.EnterAsync(CancellationToken.None);
#pragma warning restore CA2012
                }

                // Each waiter in turn: let go, await the next (handed the lock on the pool), and so on.
                for (var i = 0; i < waits.Length; i++)
                {
                    gate.Exit();
                    await waits[i];
                }
            }

            gate.Exit();
        }

        await Contend(10);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var total = GC.GetTotalAllocatedBytes(precise: true);
        await Contend(200);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - total;
        TestContext.Out.WriteLine($"{allocated} bytes allocated by the process during 1600 contended waits ({GC.GetAllocatedBytesForCurrentThread() - before} on this thread)");
        // The test's own awaits run on the pool (its async state machine was boxed once, in the warm-up); 1600 waits
        // through SemaphoreSlim allocated a task, a node and a continuation each (~200 KB).
        Assert.That(allocated, Is.LessThan(16 * 1024), "the lock's waits allocate nothing");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
