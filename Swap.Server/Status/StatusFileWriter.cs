using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Swap.Server.Status;

/// <summary>
/// Keeps the status file current: rewritten every second, atomically (a temp file renamed over it), so a reader
/// never sees half a file; a last version with state "stopped" when the server stops.
/// </summary>
public sealed class StatusFileWriter : IAsyncDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly string _path;
    private readonly string _temp;
    private readonly Func<string, ServerStatus> _capture;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;
    private bool _failing;
    private int _writes;

    /// <param name="capture">Builds the status for a state ("serving", "stopped").</param>
    public StatusFileWriter(string path, Func<string, ServerStatus> capture, TimeProvider time, ILogger logger)
    {
        _path = Path.GetFullPath(path);
        _temp = _path + ".tmp";
        _capture = capture;
        _time = time;
        _logger = logger;
    }

    /// <summary>Writes the first status now, then once per <see cref="Interval"/>.</summary>
    public void Start()
    {
        Write("serving");
        _loop = RunAsync();
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                Write("serving");
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
        Write("stopped");
    }

    /// <summary>Rewrites begun so far (counted before the file appears): lets a test prove one did not happen.</summary>
    internal int Writes => Volatile.Read(ref _writes);

    private void Write(string state)
    {
        Interlocked.Increment(ref _writes);
        try
        {
            var json = JsonSerializer.SerializeToUtf8Bytes(_capture(state), StatusJsonContext.Default.ServerStatus);
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
