using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Swap.Common.Configuration;
using Swap.Common.Hosting;
using Swap.Common.Security;
using Swap.Common.Status;
using Swap.Daemon.Protocol;
using Swap.Donor.Connections;
using Swap.Donor.Eviction;
using Swap.Donor.Lending;
using Swap.Donor.Slabs;
using Swap.Donor.Status;
using Swap.Donor.Transport;

namespace Swap.Donor;

/// <summary>
/// The donor daemon (swapnbd-daemon), embeddable: lends slabs of this host's free memory to SwapNbd servers over the
/// daemon wire protocol, and takes them back (EVICTED) when the host itself runs short. This type is the host: the
/// listener, the connections and their HELLO timeout; the slab table, client registry, lender and evictor do the rest.
/// </summary>
public sealed class DonorDaemon : IAsyncDisposable
{
    private readonly DonorOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ProcMeminfo? _ownedMemory;
    private readonly Func<IDonorTransport, IDonorTransport>? _transportLayer;
    // One lock for the slab table, the client registry, the lender and the evictor: a client's slab set, the table,
    // the bytes lent and the smoothed MemAvailable must be seen and changed together (an ALLOC_SLAB must not pass its
    // limits while an eviction or a grace expiry is half done). The data path takes no lock.
    private readonly Lock _gate = new();
    private readonly MemoryPressureEvictor _evictor;
    private readonly ConcurrentDictionary<long, DonorConnection> _connections = new();
    private readonly ConnectionBudget<DonorConnection> _budget;
    private readonly List<IPEndPoint> _endPoints = [];
    private Socket? _listener;
    private StatusFileWriter<DonorStatus>? _status;
    private Task? _acceptLoop;
    private long _nextConnectionId;
    private int _started;
    private int _stopped;

    /// <param name="transportLayer">
    /// Wraps each accepted connection's transport (the socket) before the daemon uses it; null uses the socket as is.
    /// Tests pass a fault layer here that stalls, garbles or drops connections.
    /// </param>
    public DonorDaemon(DonorOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null, IMemoryAvailability? memory = null,
        Func<IDonorTransport, IDonorTransport>? transportLayer = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors), nameof(options));
        }

        _options = options;
        _budget = new ConnectionBudget<DonorConnection>(options.MaxHandshakes, options.MaxConnections);
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Swap.Slabs.Donor");
        _time = timeProvider ?? TimeProvider.System;
        _transportLayer = transportLayer;
        if (memory is null)
        {
            _ownedMemory = new ProcMeminfo();
            memory = _ownedMemory;
        }

        var smoothed = new SmoothedMemAvailable();
        Slabs = new DonorSlabTable(_gate);
        Clients = new DonorClientRegistry(_gate, Slabs, options, _time, _logger);
        Lender = new SlabLender(_gate, Slabs, Clients, smoothed, memory, options, _time, _logger);
        _evictor = new MemoryPressureEvictor(_gate, Slabs, smoothed, memory, options, _time, _logger);
        // Validate() refused a bad file already; a file that changed since throws ClusterKeyException here.
        Key = options.AuthKeyFile is { } keyFile ? ClusterKeyFile.Load(keyFile) : null;
        DaemonId = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        Welcome = new DaemonWelcome(DaemonFrameHeader.Version, (uint)options.MaxSlabsPerClient, DaemonId);
        Metrics = new DonorMetrics(this, () => _evictor.Evicted);
    }

    /// <summary>The daemon's instruments (meter <see cref="DonorMetrics.MeterName"/>), disposed with the daemon.</summary>
    public DonorMetrics Metrics { get; }

    /// <summary>Random id of this daemon run, sent in the HELLO reply.</summary>
    public ulong DaemonId { get; }

    /// <summary>The endpoints actually bound (with the real port when port 0 was asked for).</summary>
    public IReadOnlyList<IPEndPoint> EndPoints => _endPoints;

    /// <summary>Open connections.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Open connections that have not finished their HELLO (each holds one of <see cref="DonorOptions.MaxHandshakes"/>).</summary>
    public int HandshakingCount => _budget.Handshaking;

    /// <summary>Slabs currently lent.</summary>
    public int SlabCount
    {
        get
        {
            lock (_gate)
            {
                return Slabs.CountLocked;
            }
        }
    }

    /// <summary>Bytes lent, every slab at its full size.</summary>
    public long BytesLent
    {
        get
        {
            lock (_gate)
            {
                return Slabs.LentLocked;
            }
        }
    }

    /// <summary>Bytes of slab memory actually committed (pages written and not trimmed).</summary>
    public long BytesCommitted
    {
        get
        {
            lock (_gate)
            {
                return Slabs.CommittedLocked();
            }
        }
    }

    /// <summary>Client ids known: connected, or disconnected and within their grace period.</summary>
    public int ClientCount => Clients.Count;

    /// <summary>The smoothed MemAvailable the monitor last computed, in bytes.</summary>
    public long SmoothedMemAvailable => _evictor.SmoothedMemAvailable;

    /// <summary>The daemon's state now, as the status file (--status-file) reports it; <paramref name="state"/> is "running" or "stopped".</summary>
    public DonorStatus CaptureStatus(string state)
    {
        int slabs;
        long lent, committed;
        lock (_gate)
        {
            slabs = Slabs.CountLocked;
            lent = Slabs.LentLocked;
            committed = Slabs.CommittedLocked();
        }

        return new DonorStatus(_time.GetUtcNow(), Environment.ProcessId, state, DaemonId.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
            _endPoints.Select(static e => e.ToString()).ToList(), _options.MaxMemory, lent, committed, _options.Headroom,
            _evictor.LastMemAvailable, _evictor.SmoothedMemAvailable, slabs, ConnectionCount, HandshakingCount, _evictor.Evicted,
            Metrics.Counts.RefusedCount, Clients.Snapshot(), Metrics.Counts.Snapshot());
    }

    /// <summary>Status file rewrites begun so far (0 without one).</summary>
    internal int StatusWrites => _status?.Writes ?? 0;

    internal DonorSlabTable Slabs { get; }

    internal DonorClientRegistry Clients { get; }

    internal SlabLender Lender { get; }

    internal DaemonWelcome Welcome { get; }

    /// <summary>The cluster key servers must prove; null with --insecure-no-auth.</summary>
    internal ClusterKey? Key { get; }

    internal TimeSpan HelloTimeout => _options.HelloTimeout;

    internal long Now() => _time.GetTimestamp();

    /// <summary>Closes <paramref name="connection"/> unless it says HELLO within the configured time.</summary>
    internal ITimer StartHelloTimer(DonorConnection connection) =>
        _time.CreateTimer(static state => ((DonorConnection)state!).HelloTimedOut(), connection, _options.HelloTimeout, Timeout.InfiniteTimeSpan);

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
        _evictor.Start();
        DonorLog.Listening(_logger, bound.ToString(), _options.MaxMemory, _options.Headroom);
        if (Key is null)
        {
            DonorLog.Insecure(_logger, bound.ToString());
        }

        _acceptLoop = AcceptLoopAsync(listener);
        if (_options.StatusFile is { } statusFile)
        {
            _status = new StatusFileWriter<DonorStatus>(statusFile, CaptureStatus, DonorStatusJsonContext.Default.DonorStatus, DonorStatus.Running, _time, _logger);
            _status.Start();
        }
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

            if (Volatile.Read(ref _stopped) != 0)
            {
                client.Dispose();
                continue;
            }

            // Only connections past their HELLO count here; those still before it have a budget of their own below.
            if (_budget.EstablishedFull)
            {
                DonorLog.TooManyConnections(_logger, client.RemoteEndPoint?.ToString() ?? "?", _options.MaxConnections);
                client.Dispose();
                continue;
            }

            client.NoDelay = true;
            var id = Interlocked.Increment(ref _nextConnectionId);
            var remote = client.RemoteEndPoint?.ToString() ?? "?";
            DonorLog.Accepted(_logger, id, remote);
            IDonorTransport transport = new SocketDonorTransport(client);
            if (_transportLayer is not null)
            {
                transport = _transportLayer(transport);
            }

            var connection = new DonorConnection(id, remote, transport, this, _logger);
            connection.Ticket = _budget.Admit(connection, remote, out var evicted);
            _connections[id] = connection;
            if (evicted is not null)
            {
                DonorLog.HandshakeEvicted(_logger, evicted.Owner.Id, evicted.Peer, id, remote, _options.MaxHandshakes);
                evicted.Owner.Close();
            }

            connection.Start();
        }
    }

    /// <summary>
    /// <paramref name="connection"/> is established (its HELLO is done): it takes one of the MaxConnections places;
    /// false when it was closed meanwhile to make room, or every place is taken (then the caller closes it).
    /// </summary>
    internal bool Establish(DonorConnection connection)
    {
        var ticket = connection.Ticket!;
        if (_budget.TryEstablish(ticket))
        {
            return true;
        }

        if (ticket.State == BudgetTicketState.Refused)
        {
            DonorLog.TooManyConnections(_logger, ticket.Peer, _options.MaxConnections);
        }

        return false;
    }

    internal void OnConnectionClosed(DonorConnection connection)
    {
        if (connection.Ticket is { } ticket)
        {
            _budget.Release(ticket);
        }

        // Detach first: once ConnectionCount drops, the grace timer (if any) exists.
        Clients.Detach(connection);
        _connections.TryRemove(connection.Id, out _);
    }

    /// <summary>Stops accepting, closes every connection, stops the monitor, frees every slab, leaves the status file "stopped".</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        // From here on no eviction runs and no connection that closes starts a grace period.
        _evictor.Stop();
        Clients.Stop();
        DonorLog.Stopping(_logger, _connections.Count, SlabCount);
        _listener?.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        var closing = new List<Task>();
        foreach (var connection in _connections.Values)
        {
            connection.Close();
            closing.Add(connection.Completion);
        }

        await Task.WhenAll(closing).ConfigureAwait(false);
        Clients.ReleaseAll();
        if (_status is not null)
        {
            // Last, so the file says "stopped" only once every connection is closed and every slab freed.
            await _status.DisposeAsync().ConfigureAwait(false);
        }

        _ownedMemory?.Dispose();
        Metrics.Dispose();
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
