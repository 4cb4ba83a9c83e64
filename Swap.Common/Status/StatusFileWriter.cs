using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Logging;

namespace Swap.Common.Status;

/// <summary>
/// Keeps a status file current: rewritten every second on the injected clock, atomically (a temp file renamed over
/// it), so a reader never sees half a file; a last version with state "stopped" when the process stops.
/// </summary>
/// <typeparam name="T">The status record, serialized with source-generated JSON.</typeparam>
public sealed class StatusFileWriter<T> : IAsyncDisposable
{
    private readonly string _path;
    private readonly string _temp;
    private readonly Func<string, T> _capture;
    private readonly JsonTypeInfo<T> _json;
    private readonly string _runningState;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;
    private bool _failing;
    private int _writes;

    /// <param name="capture">Builds the status for a state (<paramref name="runningState"/>, or <see cref="StatusFile.Stopped"/>).</param>
    /// <param name="runningState">The state written while the process runs ("serving", "running").</param>
    public StatusFileWriter(string path, Func<string, T> capture, JsonTypeInfo<T> json, string runningState, TimeProvider time, ILogger logger)
    {
        _path = Path.GetFullPath(path);
        _temp = _path + ".tmp";
        _capture = capture;
        _json = json;
        _runningState = runningState;
        _time = time;
        _logger = logger;
    }

    /// <summary>Writes the first status now, then once per <see cref="StatusFile.Interval"/>.</summary>
    public void Start()
    {
        Write(_runningState);
        _loop = RunAsync();
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(StatusFile.Interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                Write(_runningState);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Ends the periodic rewrite and leaves the file with state "stopped".</summary>
    public async Task StopAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        Write(StatusFile.Stopped);
    }

    /// <summary>Rewrites begun so far (counted before the file appears): lets a test prove one did not happen.</summary>
    public int Writes => Volatile.Read(ref _writes);

    private void Write(string state)
    {
        Interlocked.Increment(ref _writes);
        try
        {
            var json = JsonSerializer.SerializeToUtf8Bytes(_capture(state), _json);
            File.WriteAllBytes(_temp, json);
            File.Move(_temp, _path, overwrite: true);
            if (_failing)
            {
                _failing = false;
                StatusLog.Recovered(_logger, _path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Once per failure streak: a full disk must not flood the log every second.
            if (!_failing)
            {
                _failing = true;
                StatusLog.WriteFailed(_logger, _path, ex.Message);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
