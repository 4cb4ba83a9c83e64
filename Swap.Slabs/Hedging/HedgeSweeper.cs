using System.Diagnostics;

namespace Swap.Slabs.Hedging;

/// <summary>
/// The thread that fires hedged reads past their bound. A bound is a few hundred microseconds and every .NET timer
/// counts whole milliseconds, so this thread sleeps (clock_nanosleep, with the timer slack cut to 1 µs) until the
/// earliest deadline, in slices no longer than the floor while any read waits or one waited recently: a read armed
/// during a slice is seen before its deadline, which is a floor or more away. After <see cref="Linger"/> without any
/// it parks on an event, which the next read to arm sets. Deadlines are timestamps of the device's
/// <see cref="TimeProvider"/>, so a fake clock drives the firing; only the slices are real time.
/// </summary>
internal sealed class HedgeSweeper : IDisposable
{
    /// <summary>Idle time after which the thread parks instead of sleeping in slices.</summary>
    public static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(20);

    private const long MinimumSliceNanoseconds = 20_000;
    private const long MaximumSliceNanoseconds = 1_000_000;
    private const long TimerSlackNanoseconds = 1_000;

    private readonly ReadHedger _hedger;
    private readonly TimeProvider _time;
    private readonly long _sliceNanoseconds;
    private readonly double _nanosecondsPerTick;
    private readonly ManualResetEventSlim _wake = new(initialState: false);
    private readonly Thread _thread;
    private int _parked;
    private int _stop;
    private long _sweeps;

    public HedgeSweeper(ReadHedger hedger, TimeProvider time, TimeSpan floor)
    {
        _hedger = hedger;
        _time = time;
        _sliceNanoseconds = Math.Clamp((long)floor.TotalNanoseconds, MinimumSliceNanoseconds, MaximumSliceNanoseconds);
        _nanosecondsPerTick = 1e9 / time.TimestampFrequency;
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
        _ = HedgeNative.SetTimerSlack(TimerSlackNanoseconds);
        var idleSince = Stopwatch.GetTimestamp();
        while (Volatile.Read(ref _stop) == 0)
        {
            var now = _time.GetTimestamp();
            var next = _hedger.Sweep(now);
            Interlocked.Increment(ref _sweeps);
            if (_hedger.ArmedCount > 0)
            {
                idleSince = Stopwatch.GetTimestamp();
                var untilNext = next == long.MaxValue ? _sliceNanoseconds : (long)((next - now) * _nanosecondsPerTick);
                HedgeNative.Sleep(Math.Clamp(untilNext, 1_000, _sliceNanoseconds));
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
