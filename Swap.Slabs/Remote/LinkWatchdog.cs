using System.Net.Sockets;

namespace Swap.Slabs.Remote;

/// <summary>
/// The periodic check of a <see cref="DaemonLink"/>, on a timer of the injected <see cref="TimeProvider"/>: replaces a
/// receive thread whose continuation blocks, sends the deferred frames, fails the whole link when a request outlives
/// its timeout, and sends a STATS heartbeat when the link is idle, so a stalled daemon is found before a swap-in needs it.
/// </summary>
internal sealed class LinkWatchdog : IDisposable
{
    private readonly DaemonLink _link;
    private readonly RequestSlotPool _pool;
    private readonly FrameSender _sender;
    private readonly ReplyReceiver _receiver;
    private readonly DaemonLinkSettings _settings;
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private int _heartbeatPending;
    private int _flushing;

    public LinkWatchdog(DaemonLink link, RequestSlotPool pool, FrameSender sender, ReplyReceiver receiver, DaemonLinkSettings settings, TimeProvider time)
    {
        _link = link;
        _pool = pool;
        _sender = sender;
        _receiver = receiver;
        _settings = settings;
        _time = time;
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond * 10, Math.Min(settings.RequestTimeout.Ticks, settings.HeartbeatInterval.Ticks) / 4));
        _timer = time.CreateTimer(static state => ((LinkWatchdog)state!).Watch(), this, period, period);
    }

    public void Dispose() => _timer.Dispose();

    private void Watch()
    {
        if (!_link.IsAlive)
        {
            return;
        }

        var now = _time.GetTimestamp();
        _receiver.ReplaceIfStuck(now);
        var pending = false;
        foreach (var slot in _pool.Slots)
        {
            var deadline = Volatile.Read(ref slot.Deadline);
            if (deadline != 0)
            {
                pending = true;
                if (now > deadline)
                {
                    _link.Kill($"{slot.Opcode} request unanswered after {_settings.RequestTimeout.TotalMilliseconds} ms");
                    return;
                }
            }
        }

        StartSendDeferred();

        var idle = _time.GetElapsedTime(_receiver.LastActivity, now);
        if (!pending && idle >= _settings.HeartbeatInterval && Interlocked.Exchange(ref _heartbeatPending, 1) == 0)
        {
            _ = HeartbeatAsync();
        }
    }

    /// <summary>
    /// Sends the deferred frames on a pool thread, one flush at a time: into a full socket buffer (a silent donor) the
    /// send blocks up to the send timeout, and a watchdog that sent them itself stopped checking deadlines meanwhile,
    /// so a partition was found only when that send timed out (link down 4.1-4.9 s after the cut instead of about 2).
    /// </summary>
    private void StartSendDeferred()
    {
        if (Interlocked.Exchange(ref _flushing, 1) == 1)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static watchdog =>
        {
            try
            {
                watchdog.SendDeferred();
            }
            finally
            {
                Volatile.Write(ref watchdog._flushing, 0);
            }
        }, this, preferLocal: false);
    }

    private void SendDeferred()
    {
        try
        {
            _sender.SendDeferred();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            _link.Kill($"send failed: {ex.Message}");
        }
    }

    private async Task HeartbeatAsync()
    {
        try
        {
            await _link.StatsAsync().ConfigureAwait(false);
        }
        catch (DaemonLinkException)
        {
            // The link is already down and reported.
        }
        finally
        {
            Volatile.Write(ref _heartbeatPending, 0);
        }
    }
}
