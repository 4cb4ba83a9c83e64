using System.Globalization;

namespace Swap.Nbd.Client.Cli;

/// <summary>The once-a-second progress line on stderr: rewritten in place on a terminal, one line each otherwise.</summary>
internal sealed class BenchProgress
{
    private readonly TextWriter _stderr;
    private readonly IReadOnlyList<BenchWorker> _workers;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly bool _inPlace;
    private long _lastOps;
    private long _lastTimestamp;
    private bool _wrote;

    public BenchProgress(TextWriter stderr, IReadOnlyList<BenchWorker> workers, TimeProvider time, long started)
    {
        _stderr = stderr;
        _workers = workers;
        _time = time;
        _started = started;
        _lastTimestamp = started;
        _inPlace = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
    }

    public async Task ReportAsync()
    {
        long ops = 0, errors = 0;
        foreach (var worker in _workers)
        {
            ops += worker.Reads + worker.Writes;
            errors += worker.Errors;
        }

        var now = _time.GetTimestamp();
        var interval = _time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
        var iops = interval > 0 ? (ops - _lastOps) / interval : 0;
        (_lastOps, _lastTimestamp) = (ops, now);
        var line = string.Create(CultureInfo.InvariantCulture,
            $"[{_time.GetElapsedTime(_started, now).TotalSeconds,5:0.0}s] {iops,9:0} IOPS  {ops,10} ops  {errors} errors");
        await _stderr.WriteAsync(_inPlace ? "\r" + line : line + Environment.NewLine).ConfigureAwait(false);
        _wrote = true;
    }

    public async Task EndAsync()
    {
        if (_inPlace && _wrote)
        {
            await _stderr.WriteLineAsync().ConfigureAwait(false);
        }
    }
}
