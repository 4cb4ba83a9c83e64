using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging;
using Swap.Common.Configuration;
using Swap.Common.Hosting;
using Swap.Daemon.Protocol;

namespace Swap.Donor;

/// <summary>
/// The donor daemon (swapnbd-daemon), embeddable: lends slabs of this host's free memory to SwapNbd servers over the
/// daemon wire protocol, and takes them back (EVICTED) when the host itself runs short.
/// </summary>
public sealed partial class DonorDaemon : IAsyncDisposable
{
    private readonly DonorOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IMemoryAvailability _memory;
    private readonly ProcMeminfo? _ownedMemory;
    private readonly ConcurrentDictionary<long, DonorConnection> _connections = new();
    private readonly List<IPEndPoint> _endPoints = [];
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _nextConnectionId;
    private int _faults;
    private int _started;
    private int _stopped;

    public DonorDaemon(DonorOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null, IMemoryAvailability? memory = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors), nameof(options));
        }

        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Swap.Donor");
        _time = timeProvider ?? TimeProvider.System;
        if (memory is null)
        {
            _ownedMemory = new ProcMeminfo();
            memory = _ownedMemory;
        }

        _memory = memory;
        DaemonId = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        Welcome = new DaemonWelcome(DaemonFrameHeader.Version, (uint)options.MaxSlabsPerClient, DaemonId);
    }

    /// <summary>Random id of this daemon run, sent in the HELLO reply.</summary>
    public ulong DaemonId { get; }

    /// <summary>The endpoints actually bound (with the real port when port 0 was asked for).</summary>
    public IReadOnlyList<IPEndPoint> EndPoints => _endPoints;

    /// <summary>Fault points switched on; setting <see cref="DonorFaults.DropConnections"/> closes every connection at once.</summary>
    public DonorFaults Faults
    {
        get => (DonorFaults)Volatile.Read(ref _faults);
        set
        {
            Volatile.Write(ref _faults, (int)value);
            DonorLog.FaultsChanged(_logger, value);
            if ((value & DonorFaults.DropConnections) != 0)
            {
                foreach (var connection in _connections.Values)
                {
                    connection.Close();
                }
            }
        }
    }

    /// <summary>Open connections.</summary>
    public int ConnectionCount => _connections.Count;

    internal DaemonWelcome Welcome { get; }

    internal long Now() => _time.GetTimestamp();

    /// <summary>Closes <paramref name="connection"/> unless it says HELLO within the configured time.</summary>
    internal ITimer StartHelloTimer(DonorConnection connection) =>
        _time.CreateTimer(static state => ((DonorConnection)state!).HelloTimedOut(), connection, _options.HelloTimeout, Timeout.InfiniteTimeSpan);

    internal TimeSpan HelloTimeout => _options.HelloTimeout;

    /// <summary>Binds the listener, starts accepting and starts the memory monitor; throws if the address cannot be bound.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("the daemon is already started");
        }

        _ = EndpointParser.TryParse(_options.Listen, out var endpoint); // validated by the options
        var listener = Listener.ListenTcp(endpoint);
        _listener = listener;
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        _endPoints.Add(bound);
        StartMonitor();
        DonorLog.Listening(_logger, bound.ToString(), _options.MaxMemory, _options.Headroom);
        _acceptLoop = AcceptLoopAsync(listener);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            var client = await Listener.AcceptAsync(listener, () => Volatile.Read(ref _stopped) != 0,
                ex => DonorLog.AcceptFailed(_logger, ex, listener.LocalEndPoint?.ToString() ?? "?"), TimeProvider.System).ConfigureAwait(false);
            if (client is null)
            {
                return;
            }

            if (Volatile.Read(ref _stopped) != 0 || (Faults & DonorFaults.DropConnections) != 0)
            {
                client.Dispose();
                continue;
            }

            if (_connections.Count >= _options.MaxConnections)
            {
                DonorLog.TooManyConnections(_logger, client.RemoteEndPoint?.ToString() ?? "?", _options.MaxConnections);
                client.Dispose();
                continue;
            }

            client.NoDelay = true;
            var id = Interlocked.Increment(ref _nextConnectionId);
            DonorLog.Accepted(_logger, id, client.RemoteEndPoint?.ToString() ?? "?");
            var connection = new DonorConnection(id, client, this, _logger);
            _connections[id] = connection;
            connection.Start();
        }
    }

    internal void OnConnectionClosed(DonorConnection connection)
    {
        // Detach first: once ConnectionCount drops, the grace timer (if any) exists.
        DetachClient(connection);
        _connections.TryRemove(connection.Id, out _);
    }

    /// <summary>Stops accepting, closes every connection, stops the monitor and frees every slab.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        DonorLog.Stopping(_logger, _connections.Count, SlabCount);
        _listener?.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        StopMonitor();
        var closing = new List<Task>();
        foreach (var connection in _connections.Values)
        {
            connection.Close();
            closing.Add(connection.Completion);
        }

        await Task.WhenAll(closing).ConfigureAwait(false);
        FreeEverything();
        _ownedMemory?.Dispose();
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
