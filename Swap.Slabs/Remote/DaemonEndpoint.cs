using System.Net;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace Swap.Slabs.Remote;

/// <summary>
/// One daemon from portal.list: keeps a <see cref="DaemonLink"/> to it alive. Connect + HELLO run through a Polly
/// pipeline (per-attempt timeout, circuit breaker, retry with jittered exponential back-off), so a daemon that is
/// down costs a few attempts a second at most, and a restarted one rejoins on its own.
/// </summary>
public sealed class DaemonEndpoint : IAsyncDisposable
{
    private readonly EndPoint _endPoint;
    private readonly ulong _clientId;
    private readonly DaemonLinkSettings _settings;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline<DaemonLink> _pipeline;
    private readonly CancellationTokenSource _stop = new();
    private DaemonLink? _link;
    private Task _loop = Task.CompletedTask;
    private FailureKind _lastLogged;

    /// <exception cref="ArgumentException">The settings have no <see cref="DaemonLinkSettings.AuthKey"/> and do not say
    /// <see cref="DaemonLinkSettings.InsecureNoAuth"/>, or say both.</exception>
    public DaemonEndpoint(string name, EndPoint endPoint, ulong clientId, DaemonLinkSettings settings, TimeProvider time, ILogger logger)
    {
        if ((settings.AuthKey is null) != settings.InsecureNoAuth)
        {
            throw new ArgumentException(settings.InsecureNoAuth
                ? "DaemonLinkSettings: InsecureNoAuth and AuthKey exclude each other"
                : "DaemonLinkSettings: a daemon link needs AuthKey (the cluster key), or InsecureNoAuth to connect without one", nameof(settings));
        }

        Name = name;
        _endPoint = endPoint;
        _clientId = clientId;
        _settings = settings;
        _time = time;
        _logger = logger;
        _pipeline = new ResiliencePipelineBuilder<DaemonLink> { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<DaemonLink>
            {
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = settings.ReconnectDelay,
                MaxDelay = settings.ReconnectMaxDelay,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is not null && !_stop.IsCancellationRequested),
                OnRetry = args =>
                {
                    // A failure is logged at attempts 0, 10, 100 and 1000 of a streak, and whenever its kind changes
                    // (a daemon that timed out and then answers with another cluster's key is an error at once).
                    if (args.AttemptNumber is 0 or 10 or 100 or 1000 || KindChanged(args.Outcome.Exception))
                    {
                        LogFailure(args.Outcome.Exception);
                    }

                    return default;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<DaemonLink>
            {
                FailureRatio = 1.0,
                MinimumThroughput = 5,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = settings.BreakDuration,
            })
            .AddTimeout(settings.ConnectTimeout)
            .Build();
    }

    /// <summary>host:port as portal.list gave it.</summary>
    public string Name { get; }

    /// <summary>The live link, or null while the daemon is down.</summary>
    public DaemonLink? Link => Volatile.Read(ref _link);

    /// <summary>Raised (on a pool thread) when a link comes up.</summary>
    public event Action<DaemonEndpoint, DaemonLink>? Joined;

    /// <summary>Raised when a link dies, after its pending requests have failed.</summary>
    public event Action<DaemonEndpoint, DaemonLink>? Lost;

    public void Start()
    {
        if (_settings.AuthKey is null)
        {
            DaemonLinkLog.Insecure(_logger, Name);
        }

        _loop = Task.Run(RunAsync);
    }

    private enum FailureKind
    {
        None,
        Unreachable,
        Refused,
        Auth,
    }

    /// <summary>The kind of a failed attempt; an open circuit only repeats the failure that opened it.</summary>
    private static FailureKind KindOf(Exception? exception) => exception switch
    {
        BrokenCircuitException or null => FailureKind.None,
        DaemonAuthException => FailureKind.Auth,
        DaemonLinkException => FailureKind.Refused,
        _ => FailureKind.Unreachable,
    };

    private bool KindChanged(Exception? exception)
    {
        var kind = KindOf(exception);
        return kind != FailureKind.None && kind != _lastLogged;
    }

    /// <summary>A failed attempt: a key that does not match is an error of its own (a fake daemon, or a misconfiguration).</summary>
    private void LogFailure(Exception? exception)
    {
        var kind = KindOf(exception);
        if (kind != FailureKind.None)
        {
            _lastLogged = kind;
        }

        if (exception is DaemonAuthException)
        {
            DaemonLinkLog.AuthFailed(_logger, Name, exception.Message);
        }
        else
        {
            DaemonLinkLog.ConnectFailed(_logger, Name, exception?.Message ?? "");
        }
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            DaemonLink link;
            try
            {
                link = await _pipeline.ExecuteAsync(
                    static async (state, token) => await DaemonLink.ConnectAsync(state._endPoint, state._clientId, state._settings, state._time, state._logger, token).ConfigureAwait(false),
                    this, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is BrokenCircuitException or TimeoutRejectedException or DaemonLinkException or DaemonAuthException or IOException or System.Net.Sockets.SocketException)
            {
                LogFailure(ex);
                continue;
            }

            _lastLogged = FailureKind.None;
            Volatile.Write(ref _link, link);
            DaemonLinkLog.Joined(_logger, Name, link.DaemonId, link.MaxSlabs);
            Joined?.Invoke(this, link);
            await link.Completion.WaitAsync(_stop.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Volatile.Write(ref _link, null);
            link.Dispose();
            Lost?.Invoke(this, link);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Link?.Dispose();
        _stop.Dispose();
    }
}
