using System.Diagnostics;

namespace Swap.Slabs.Hedging;

/// <summary>
/// The thread that fires hedged reads past their bound. Every .NET timer counts whole milliseconds, so this thread
/// sleeps (clock_nanosleep, with the timer slack cut to 1 µs) in ticks of <see cref="Tick"/> while any read waits or
/// one waited recently, and fires what is past its deadline at each: a read is hedged between its bound and its bound
/// plus a tick. After <see cref="Linger"/> without any it parks on an event, which the next read to arm sets.
/// Deadlines are timestamps of the device's <see cref="TimeProvider"/>, so a fake clock drives the firing; only the
/// ticks are real time.
/// The tick is not the bound: sleeping until each deadline (slices of the 100 µs floor) woke this thread about once a
/// read and cost 14-28 µs of CPU per read on this project's VM (timer interrupts are VM exits), halving the IOPS of a
/// QD1 reader with no loss at all. A 500 µs tick costs at most 2000 wakes a second; a stalled read still waits under a
/// millisecond instead of TCP's 200 ms.
/// </summary>
internal sealed class HedgeSweeper : IDisposable
{
    /// <summary>Idle time after which the thread parks instead of sleeping in slices.</summary>
    public static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(20);

    /// <summary>How often the thread looks for reads past their bound while any is armed.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMicroseconds(500);

    private const long TimerSlackNanoseconds = 1_000;

    private readonly ReadHedger _hedger;
    private readonly TimeProvider _time;
    private readonly long _sliceNanoseconds;
    private readonly ManualResetEventSlim _wake = new(initialState: false);
    private readonly Thread _thread;
    private int _parked;
    private int _stop;
    private long _sweeps;

    public HedgeSweeper(ReadHedger hedger, TimeProvider time)
    {
        _hedger = hedger;
        _time = time;
        _sliceNanoseconds = (long)Tick.TotalNanoseconds;
        _thread = new Thread(Run) { IsBackground = true, Name = "hedged reads" };
    }

    public long Sweeps => Interlocked.Read(ref _sweeps);

    public void Start() => _thread.UnsafeStart();

    /// <summary>Called when the first read arms: unparks the thread if it sleeps for good.</summary>
    public void Wake()
    {
        if (Volatile.Read(ref _parked) == 1)
        {
            _wake.Set();
        }
    }

    public void Dispose()
    {
        Volatile.Write(ref _stop, 1);
        _wake.Set();
        if (Thread.CurrentThread != _thread && _thread.IsAlive)
        {
            _thread.Join(TimeSpan.FromSeconds(2));
        }
    }

    private void Run()
    {
        Swap.Common.Hosting.StackPrefault.Touch();
        _ = HedgeNative.SetTimerSlack(TimerSlackNanoseconds);
        var idleSince = Stopwatch.GetTimestamp();
        while (Volatile.Read(ref _stop) == 0)
        {
            var now = _time.GetTimestamp();
            _hedger.Sweep(now);
            Interlocked.Increment(ref _sweeps);
            if (_hedger.ArmedCount > 0)
            {
                idleSince = Stopwatch.GetTimestamp();
                HedgeNative.Sleep(_sliceNanoseconds);
                continue;
            }

            if (Stopwatch.GetElapsedTime(idleSince) < Linger)
            {
                HedgeNative.Sleep(_sliceNanoseconds);
                continue;
            }

            // Park. The read that arms next sees _parked (it increments the armed count first, then reads this
            // flag; this thread sets the flag, then reads the count), so one of the two always sees the other.
            _wake.Reset();
            Interlocked.Exchange(ref _parked, 1);
            if (_hedger.ArmedCount == 0 && Volatile.Read(ref _stop) == 0)
            {
                _wake.Wait();
            }

            Interlocked.Exchange(ref _parked, 0);
            idleSince = Stopwatch.GetTimestamp();
        }
    }
}
