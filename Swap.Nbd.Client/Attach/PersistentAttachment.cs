using System.Globalization;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Polly;
using Polly.Retry;
using Swap.Common.Hosting;
using Swap.Nbd.Client.Netlink;

namespace Swap.Nbd.Client.Attach;

/// <summary>
/// <c>attach --persist</c> after CONNECT: listens for NBD_CMD_LINK_DEAD on "nbd_mc_group" and checks the device with
/// NBD_CMD_STATUS now and then; for each dead connection it handshakes a new one (jittered exponential back-off) and
/// hands it to the kernel with NBD_CMD_RECONFIGURE, which fills the dead slot while the kernel still holds the
/// requests (for the dead-connection timeout). Ends on cancellation (SIGTERM), leaving the device attached.
/// </summary>
internal sealed class PersistentAttachment
{
    private static readonly TimeSpan NoticeWait = TimeSpan.FromMilliseconds(500);
    private readonly NbdNetlink _netlink;
    private readonly NetlinkSocket _notices;
    private readonly uint _index;
    private readonly AttachSettings _settings;
    private readonly AttachLog _log;
    private readonly TimeProvider _time;
    private readonly Channel<string> _dead = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ResiliencePipeline _retry;

    public PersistentAttachment(NbdNetlink netlink, NetlinkSocket notices, uint index, AttachSettings settings, AttachLog log, TimeProvider time)
    {
        _netlink = netlink;
        _notices = notices;
        _index = index;
        _settings = settings;
        _log = log;
        _time = time;
        _retry = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(ex => ex is not OperationCanceledException),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(250),
                MaxDelay = TimeSpan.FromSeconds(2),
                OnRetry = args =>
                {
                    _log.Warn(string.Create(CultureInfo.InvariantCulture,
                        $"reconnect attempt {args.AttemptNumber + 1} failed: {args.Outcome.Exception?.Message}; retrying in {args.RetryDelay.TotalMilliseconds:0} ms"));
                    return default;
                },
            })
            .Build();
    }

    /// <summary>
    /// Keeps this process resident and alive while the machine swaps through its device, as nbd-client -swap does:
    /// mlockall and oom_score_adj -1000. What is mapped now is read in and locked; later mappings are locked as they
    /// are touched (MCL_ONFAULT): plain MCL_FUTURE reads in each new thread's whole stack (8 MiB for a thread the
    /// runtime starts with the default size), which on a small machine was enough to start the OOM killer (measured
    /// in the whole-machine test, 256 MiB guest). Best effort: each refusal is a warning, not an error.
    /// </summary>
    public static void ProtectProcess(AttachLog log)
    {
        var guard = ProcessGuard.Apply(lockMemory: true, populate: true, ProcessGuard.OomScoreAdjMinimum);
        if (guard.MemoryLock == ProcessGuardStep.Failed)
        {
            var errno = guard.MemoryLockErrno;
            log.Warn($"mlockall failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}); the client's pages can be swapped out, which can deadlock a reconnect under memory pressure");
        }

        if (guard.OomScoreAdj == ProcessGuardStep.Failed)
        {
            log.Warn($"cannot set oom_score_adj to -1000: {guard.OomScoreAdjError}; the OOM killer may pick this client");
        }
    }

    private string Device => string.Create(CultureInfo.InvariantCulture, $"/dev/nbd{_index}");

    /// <summary>Runs until <paramref name="ct"/> is cancelled or the device is gone.</summary>
    public async Task<PersistOutcome> RunAsync(CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var listener = new Thread(() => Listen(stop.Token)) { IsBackground = true, Name = "nbd-notices" };
        listener.Start();
        var health = HealthAsync(stop.Token);
        var reconnect = ReconnectAsync(stop.Token);
        var first = await Task.WhenAny(health, reconnect).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        listener.Join();
        PersistOutcome code;
        try
        {
            code = await first.ConfigureAwait(false);
            await Task.WhenAll(health, reconnect).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            code = PersistOutcome.Stopped;
        }

        if (ct.IsCancellationRequested)
        {
            _log.Info($"stopping on request; {Device} stays attached");
            return PersistOutcome.Stopped;
        }

        return code;
    }

    private void Listen(CancellationToken ct)
    {
        var family = _netlink.Family.Id;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                _notices.TryReceiveNotice(NoticeWait, message =>
                {
                    if (message.Type == family && message.GenericCommand == NbdGenl.CommandLinkDead && NbdNetlinkCodec.ReadIndex(message) == _index)
                    {
                        _dead.Writer.TryWrite("NBD_CMD_LINK_DEAD");
                    }
                });
            }
            catch (NetlinkErrorException ex) when (ex.Errno == NetlinkNative.ENoBufs)
            {
                // A lost notice may have been ours: one spare socket costs nothing (RECONFIGURE ignores it if no slot is dead).
                _log.Warn($"{ex.Message}; reconnecting one connection to be safe");
                _dead.Writer.TryWrite("lost notices");
            }
            catch (Exception ex) when (ex is NetlinkErrorException or NetlinkProtocolException)
            {
                _log.Error($"reading nbd notices: {ex.Message}");
            }
        }
    }

    private async Task<PersistOutcome> HealthAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_settings.HealthInterval, _time);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            bool connected;
            try
            {
                connected = _netlink.Status(_index).Any(d => d.Index == _index && d.Connected);
            }
            catch (Exception ex) when (ex is NetlinkErrorException or NetlinkProtocolException or TimeoutException)
            {
                _log.Warn($"health check: NBD_CMD_STATUS failed: {ex.Message}");
                continue;
            }

            if (!connected)
            {
                _log.Error($"health check: {Device} is no longer connected (detached, or the dead-connection timeout ran out); exiting");
                return PersistOutcome.DeviceGone;
            }
        }

        return PersistOutcome.Stopped;
    }

    private async Task<PersistOutcome> ReconnectAsync(CancellationToken ct)
    {
        await foreach (var reason in _dead.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            var started = _time.GetTimestamp();
            _log.Warn($"{reason} for {Device}: reconnecting to {_settings.Uri.Endpoint}");
            await _retry.ExecuteAsync(async token =>
            {
                var socket = await KernelSocket.HandshakeAsync(_settings.Uri, token).ConfigureAwait(false);
                try
                {
                    _log.Info($"handshake done ({socket.Negotiation.Export.Size} bytes); handing the new socket to {Device} with NBD_CMD_RECONFIGURE");
                    _netlink.Reconfigure(new NbdNetlinkReconfigure
                    {
                        Index = _index,
                        Sockets = [KernelSocket.Descriptor(socket)],
                        BackendIdentifier = _settings.BackendId,
                    });
                    KernelSocket.Release(socket);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }, ct).ConfigureAwait(false);
            _log.Info(string.Create(CultureInfo.InvariantCulture,
                $"{Device} reconnected in {_time.GetElapsedTime(started).TotalSeconds:0.0} s"));
        }

        return PersistOutcome.Stopped;
    }
}
