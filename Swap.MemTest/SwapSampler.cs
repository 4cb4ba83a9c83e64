using System.Globalization;

namespace Swap.MemTest;

/// <summary>
/// Samples this process's swapped-out memory (VmSwap in /proc/self/status) on a background thread and keeps the peak:
/// the proof that the pages really left RAM, whatever cgroup version or swap device is in use.
/// </summary>
public sealed class SwapSampler : IDisposable
{
    private readonly Thread _thread;
    private readonly TimeSpan _interval;
    private readonly ManualResetEventSlim _stop = new();
    private long _peak;

    public SwapSampler(TimeSpan interval)
    {
        _interval = interval;
        _thread = new Thread(Run) { IsBackground = true, Name = "swap sampler" };
        _thread.Start();
    }

    /// <summary>The most swap seen so far, in bytes.</summary>
    public long Peak => Math.Max(Interlocked.Read(ref _peak), 0);

    /// <summary>VmSwap now, in bytes; 0 when the kernel does not report it.</summary>
    public static long Current()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmSwap:", StringComparison.Ordinal))
                {
                    var kib = line.AsSpan("VmSwap:".Length).Trim();
                    kib = kib.EndsWith("kB", StringComparison.Ordinal) ? kib[..^2].Trim() : kib;
                    return long.TryParse(kib, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value * 1024 : 0;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    private void Run()
    {
        do
        {
            var now = Current();
            if (now > Interlocked.Read(ref _peak))
            {
                Interlocked.Exchange(ref _peak, now);
            }
        }
        while (!_stop.Wait(_interval));
    }

    public void Dispose()
    {
        _stop.Set();
        _thread.Join();
        _stop.Dispose();
    }
}
