using Microsoft.Extensions.Logging;

namespace Swap.Nbd.Server.Transmission;

/// <summary>
/// Counts one connection's requests in flight (started on the device, not yet answered) and their bytes, against its
/// own limit and, for request buffers, the server-wide budget in <see cref="NbdServerState"/>.
/// </summary>
internal sealed class InFlightBudget(long maxInFlightBytes, NbdServerState state, long connectionId, ILogger logger)
{
    private readonly Lock _progressLock = new();
    private TaskCompletionSource? _progress;
    private long _inFlight;
    private long _inFlightBytes;

    /// <summary>True when every request received so far has been answered.</summary>
    public bool AnsweredAll => Interlocked.Read(ref _inFlight) == 0;

    /// <summary>A request of <paramref name="requestBytes"/> starts, holding a buffer of <paramref name="bufferBytes"/> (0 for none).</summary>
    public void Begin(uint requestBytes, int bufferBytes)
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Add(ref _inFlightBytes, requestBytes);
        if (bufferBytes != 0)
        {
            state.AddBufferBytes(bufferBytes);
        }
    }

    /// <summary>A finished request's buffer is about to go back to the pool.</summary>
    public void ReleaseBuffer(int bufferBytes) => state.AddBufferBytes(-bufferBytes);

    /// <summary>A request started with <see cref="Begin"/> has been answered (or given up); wakes whoever waits for room.</summary>
    public void End(uint requestBytes)
    {
        Interlocked.Add(ref _inFlightBytes, -requestBytes);
        Interlocked.Decrement(ref _inFlight);
        SignalProgress();
    }

    /// <summary>
    /// Waits while this connection's requests in flight exceed its own budget, or all connections' request buffers
    /// exceed the server's. Only a connection with requests of its own in flight waits (for them), so no connection
    /// waits on another: each may always start one.
    /// </summary>
    public async ValueTask WaitForRoomAsync(uint bytes)
    {
        while (OverBudget(bytes))
        {
            var progress = ProgressTask();
            if (OverBudget(bytes))
            {
                ConnectionLog.WaitingForBudget(logger, connectionId, bytes);
                await progress.ConfigureAwait(false);
            }
        }
    }

    /// <summary>Waits until every request started has ended.</summary>
    public async Task WaitForNoneAsync()
    {
        while (Interlocked.Read(ref _inFlight) > 0)
        {
            var progress = ProgressTask();
            if (Interlocked.Read(ref _inFlight) > 0)
            {
                await progress.ConfigureAwait(false);
            }
        }
    }

    private bool OverBudget(uint bytes) =>
        Interlocked.Read(ref _inFlight) > 0 &&
        (Interlocked.Read(ref _inFlightBytes) + bytes > maxInFlightBytes || state.BufferBytes + bytes > state.BufferBudget);

    private Task ProgressTask()
    {
        lock (_progressLock)
        {
            _progress ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _progress.Task;
        }
    }

    private void SignalProgress()
    {
        TaskCompletionSource? progress;
        lock (_progressLock)
        {
            progress = _progress;
            _progress = null;
        }

        progress?.TrySetResult();
    }
}
