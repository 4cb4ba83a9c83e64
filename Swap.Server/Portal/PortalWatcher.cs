using System.Net;
using Microsoft.Extensions.Logging;
using Swap.Slabs.Mapping;

namespace Swap.Server.Portal;

/// <summary>
/// Keeps the swap device's daemons what the portal says: reads it again and again (a file every
/// <see cref="FilePollInterval"/>; DNS at the records' shortest TTL, at least <see cref="MinimumDnsInterval"/> and at
/// most the refresh cap; at once on <see cref="Reload"/>, which SIGHUP calls) and hands every changed list to
/// <see cref="SwapDevice.SetDaemons"/>. A reading that fails, a file with an error, or an empty answer keeps the
/// last good list and is logged once (event 29) until it changes; failed readings are retried with back-off.
/// </summary>
public sealed class PortalWatcher : IAsyncDisposable
{
    public static readonly TimeSpan FilePollInterval = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MinimumDnsInterval = TimeSpan.FromSeconds(1);

    private readonly IPortalSource _source;
    private readonly SwapDevice _device;
    private readonly TimeSpan _refresh;
    private readonly bool _isFile;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string[] _current;
    private string? _lastProblem;
    private int _failures;
    private long _readings;
    private int _reloadRequested;
    private readonly TimeSpan? _initialTtl;
    private Task _loop = Task.CompletedTask;

    /// <param name="current">The daemons the device started with (the names).</param>
    /// <param name="refresh">The longest time between two DNS resolutions.</param>
    /// <param name="initialProblem">Why the first reading failed (the device started without daemons), or null.</param>
    /// <param name="initialTtl">The first reading's TTL (DNS), which times the second.</param>
    public PortalWatcher(IPortalSource source, SwapDevice device, IEnumerable<string> current, TimeSpan refresh, TimeProvider time, ILogger logger,
        string? initialProblem = null, TimeSpan? initialTtl = null)
    {
        _initialTtl = initialTtl;
        _source = source;
        _device = device;
        _refresh = refresh;
        _isFile = source is FilePortalSource;
        _time = time;
        _logger = logger;
        _current = Sorted(current);
        _lastProblem = initialProblem;
        _failures = initialProblem is null ? 0 : 1;
    }

    /// <summary>Readings of the portal so far (good or bad).</summary>
    public long Readings => Interlocked.Read(ref _readings);

    /// <summary>The last change applied: its drains complete when the daemons it removed are closed.</summary>
    public DaemonSetChange? LastChange { get; private set; }

    public void Start() => _loop = Task.Run(RunAsync);

    /// <summary>Reads the portal now (SIGHUP).</summary>
    public void Reload()
    {
        PortalLog.ReloadRequested(_logger, _source.Name);
        Volatile.Write(ref _reloadRequested, 1);
        Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    private async Task RunAsync()
    {
        var delay = Delay(_initialTtl);
        while (!_stop.IsCancellationRequested)
        {
            var wake = Volatile.Read(ref _wake).Task;
            // A reload asked before this wait began (even before the loop started) is not lost: the flag says so.
            if (Interlocked.Exchange(ref _reloadRequested, 0) == 0)
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                var timer = Task.Delay(delay, _time, wait.Token);
                await Task.WhenAny(timer, wake).ConfigureAwait(false);
                // A reload ends the wait early: the timer goes with it.
                await wait.CancelAsync().ConfigureAwait(false);
                Interlocked.Exchange(ref _reloadRequested, 0);
            }

            if (_stop.IsCancellationRequested)
            {
                return;
            }

            delay = await ReadOnceAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One reading, applied if good and different; returns the wait before the next.</summary>
    private async Task<TimeSpan> ReadOnceAsync()
    {
        PortalResolution resolution;
        try
        {
            resolution = await _source.ResolveAsync(_stop.Token).ConfigureAwait(false);
            if (resolution.Daemons.Count == 0)
            {
                throw new PortalResolveException($"{_source.Name}: the answer lists no daemon (an empty list is taken for a fault, not an order to drain every donor)");
            }
        }
        catch (PortalResolveException ex)
        {
            Interlocked.Increment(ref _readings);
            _failures++;
            var retry = Delay(null);
            if (ex.Message != _lastProblem)
            {
                _lastProblem = ex.Message;
                PortalLog.KeptLastGood(_logger, _source.Name, ex.Message, _current.Length, retry);
            }

            return retry;
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return TimeSpan.Zero;
        }

        Interlocked.Increment(ref _readings);
        _failures = 0;
        var names = Sorted(resolution.Daemons.Select(d => d.Name));
        if (names.SequenceEqual(_current))
        {
            if (_lastProblem is not null)
            {
                PortalLog.Recovered(_logger, _source.Name, names.Length);
            }
        }
        else
        {
            Apply(resolution.Daemons, names);
        }

        _lastProblem = null;
        return Delay(resolution.Ttl);
    }

    private void Apply(IReadOnlyList<(string Name, EndPoint EndPoint)> daemons, string[] names)
    {
        var change = _device.SetDaemons(daemons);
        _current = names;
        LastChange = change;
        PortalLog.Changed(_logger, _source.Name, names.Length, string.Join(", ", change.Added), string.Join(", ", change.Removed));
    }

    /// <summary>After a good reading: the file's poll, or the TTL within [1 s, refresh]; after failures: back-off up to the cap.</summary>
    private TimeSpan Delay(TimeSpan? ttl)
    {
        var cap = _isFile ? FilePollInterval : _refresh;
        if (_failures > 0)
        {
            var backoff = TimeSpan.FromTicks(MinimumDnsInterval.Ticks << Math.Min(_failures - 1, 16));
            return backoff < cap ? backoff : cap;
        }

        if (_isFile)
        {
            return FilePollInterval;
        }

        var wait = ttl ?? _refresh;
        return wait < MinimumDnsInterval ? MinimumDnsInterval : wait > _refresh ? _refresh : wait;
    }

    private static string[] Sorted(IEnumerable<string> names) => names.Order(StringComparer.Ordinal).ToArray();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }
}
