using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Server.Connection;
using Swap.Nbd.Server.Transport;
using Swap.Common.Buffers;
using Swap.Common.Configuration;
using Swap.BlockDevices;
using Swap.Common.Hosting;

namespace Swap.Nbd.Server.Hosting;

/// <summary>
/// An NBD server for one export, embeddable: tests and benchmarks start it in-process from a typed options object,
/// the swapnbd-server executable starts it from configuration.
/// </summary>
public sealed class NbdServer : IAsyncDisposable
{
    private readonly NbdServerOptions _options;
    private readonly NbdExport _export;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly NbdServerState _state;
    private readonly ConnectionSettings _connectionSettings;
    private readonly PinnedBufferPool _buffers = new(RetainBytes, RetainBytes);
    private readonly List<Socket> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly ConcurrentDictionary<long, (NbdConnection Connection, Task Task)> _connections = new();
    private readonly ConnectionBudget<NbdConnection> _budget;
    private readonly List<EndPoint> _endPoints = [];
    private const int SendBufferSize = 2 * 1024 * 1024;

    /// <summary>Buffers kept for reuse, all size classes together, however the request mix shifts.</summary>
    private const long RetainBytes = 256L << 20;
    private long _nextId;
    private int _stopped;

    public NbdServer(NbdServerOptions options, IBlockDevice device, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors), nameof(options));
        }

        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        Metrics = new NbdMetrics(() => ConnectionCount, _time);
        _state = new NbdServerState(BufferBudgetFor(options)) { Metrics = Metrics };
        // A handshake budget per listener: strangers on a TCP port cannot push out the kernel's handshakes on the socket.
        _budget = new ConnectionBudget<NbdConnection>(options.MaxHandshakes, options.MaxConnections,
            Math.Max(1, options.SplitListen().Count() + (options.Socket is null ? 0 : 1)));
        _connectionSettings = new ConnectionSettings(options.HandshakeTimeout, options.MaxInFlightBytes, options.PollMicroseconds, PipeBlocks);
        _export = new NbdExport(options.ExportName, options.Description, device);
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("Swap.Nbd.Server");
    }

    /// <summary>
    /// Request buffers are pinned arrays on the GC heap, so the heap limit (GCHeapHardLimit, 1 GiB in the published
    /// server) must hold them: reaching it ends the process, and with it the swap device. 3/8 of the limit (384 MiB)
    /// goes to buffers of requests in flight; the rest holds the pool's retained buffers (256 MiB at most), every
    /// connection's receive and reply buffers (2-3 MiB each, 192 MiB at 64 connections) and the slab maps. Without a
    /// heap limit only the per-connection budget (<see cref="NbdServerOptions.MaxInFlightBytes"/>) applies.
    /// </summary>
    internal static long BufferBudgetFor(NbdServerOptions options)
    {
        if (options.BufferBudget > 0)
        {
            return options.BufferBudget;
        }

        var limit = ProcessGuard.GcHeapHardLimit();
        return limit > 0 ? limit / 8 * 3 : long.MaxValue;
    }

    /// <summary>The endpoints actually bound (with real port numbers when port 0 was asked for).</summary>
    public IReadOnlyList<EndPoint> EndPoints => _endPoints;

    /// <summary>Open connections, in their handshake or past it.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>The server's instruments (meter <see cref="NbdMetrics.MeterName"/>), disposed with the server.</summary>
    public NbdMetrics Metrics { get; }

    /// <summary>Open connections still in their handshake (each holds one of <see cref="NbdServerOptions.MaxHandshakes"/>).</summary>
    public int HandshakingCount => _budget.Handshaking;

    /// <summary>Connections accepted since start (refused ones excluded).</summary>
    public long AcceptedConnections => Interlocked.Read(ref _nextId);

    public NbdExport Export => _export;

    /// <summary>The pool that request buffers are rented from (pinned, reused across connections).</summary>
    public PinnedBufferPool Buffers => _buffers;

    /// <summary>
    /// The pipes' memory: blocks of <see cref="SocketTransport.ReceiveSize"/>, touched when made and never given back
    /// (a connection holds about three: its input, a receive in progress, its replies). The host makes the first ones
    /// at start (<see cref="PinnedBlockMemoryPool.Preallocate"/>).
    /// </summary>
    public PinnedBlockMemoryPool PipeBlocks { get; } = new(SocketTransport.ReceiveSize);

    /// <summary>Binds every listener and starts accepting; throws if an address cannot be bound.</summary>
    public void Start()
    {
        try
        {
            foreach (var text in _options.SplitListen())
            {
                _ = EndpointParser.TryParse(text, out var ip); // validated by the options
                var tcp = Listener.ListenTcp(ip);
                _listeners.Add(tcp);
                Listening(tcp);
                ServerLog.TcpExport(_logger, tcp.LocalEndPoint?.ToString() ?? text);
            }

            if (_options.Socket is { } path)
            {
                var socket = Listener.ListenUnix(path, "Socket", out var tightened);
                _listeners.Add(socket);
                if (tightened is { } mode)
                {
                    ServerLog.SocketDirectoryTightened(_logger, Path.GetDirectoryName(Path.GetFullPath(path)) ?? path, Convert.ToString((int)mode, 8));
                }

                Listening(socket);
            }
        }
        catch
        {
            foreach (var listener in _listeners)
            {
                listener.Dispose();
            }

            throw;
        }

        for (var i = 0; i < _listeners.Count; i++)
        {
            _acceptLoops.Add(AcceptLoopAsync(_listeners[i], i));
        }
    }

    private void Listening(Socket socket)
    {
        var bound = socket.LocalEndPoint!;
        _endPoints.Add(bound);
        ServerLog.Listening(_logger, bound.ToString() ?? "?");
    }

    private async Task AcceptLoopAsync(Socket listener, int index)
    {
        while (true)
        {
            var client = await Listener.AcceptAsync(listener, () => Volatile.Read(ref _stopped) != 0,
                ex => ServerLog.AcceptFailed(_logger, ex, listener.LocalEndPoint?.ToString() ?? "?"), _time).ConfigureAwait(false);
            if (client is null)
            {
                return;
            }

            var remote = client.RemoteEndPoint?.ToString() ?? "unix";
            if (_budget.EstablishedFull || Volatile.Read(ref _stopped) != 0)
            {
                ServerLog.TooManyConnections(_logger, remote, _options.MaxConnections);
                client.Dispose();
                continue;
            }

            if (client.AddressFamily != AddressFamily.Unix)
            {
                client.NoDelay = true;
            }

            // Room for a queue depth of large read replies, so the connection thread can go on to the next request
            // while the client drains the last; the kernel caps it at net.core.wmem_max.
            client.SendBufferSize = SendBufferSize;

            var id = Interlocked.Increment(ref _nextId);
            ServerLog.Accepted(_logger, id, remote);
            BudgetTicket<NbdConnection>? ticket = null;
            var connection = new NbdConnection(id, client, _export, _connectionSettings, _state, _buffers, _time, _logger,
                handshakeDone: () => Establish(ticket!));
            ticket = _budget.Admit(connection, remote, out var evicted, index);
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _connections[id] = (connection, tcs.Task);
            if (evicted is not null)
            {
                ServerLog.HandshakeEvicted(_logger, evicted.Owner.Id, evicted.Peer, id, remote, _options.MaxHandshakes);
                evicted.Owner.Abort();
            }

            _ = RunConnectionAsync(id, connection, ticket, tcs);
        }
    }

    /// <summary>The connection finished its handshake: it takes a connection place, or is closed (false).</summary>
    private bool Establish(BudgetTicket<NbdConnection> ticket)
    {
        if (_budget.TryEstablish(ticket))
        {
            return true;
        }

        if (ticket.State == BudgetTicketState.Refused)
        {
            ServerLog.TooManyConnections(_logger, ticket.Peer, _options.MaxConnections);
        }

        return false;
    }

    private async Task RunConnectionAsync(long id, NbdConnection connection, BudgetTicket<NbdConnection> ticket, TaskCompletionSource done)
    {
        try
        {
            await Task.Yield();
            await connection.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            // Its place is free as soon as it stops serving, not after the linger of its close.
            _budget.Release(ticket);
            try
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                _connections.TryRemove(id, out _);
                done.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Graceful stop: no new connections; requests already received are answered, later ones get ESHUTDOWN;
    /// connections still open after the shutdown timeout are closed.
    /// </summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        ServerLog.Stopping(_logger, _connections.Count);
        _state.BeginStopping();
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }

        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        if (_options.Socket is { } path)
        {
            File.Delete(path);
        }

        foreach (var (connection, _) in _connections.Values)
        {
            connection.BeginShutdown();
        }

        var all = Task.WhenAll(_connections.Values.Select(c => c.Task));
        if (!await WaitAsync(all, _options.ShutdownTimeout).ConfigureAwait(false))
        {
            ServerLog.ForcedClose(_logger, _connections.Count);
            foreach (var (connection, _) in _connections.Values)
            {
                connection.Abort();
            }

            await all.ConfigureAwait(false);
        }

        ServerLog.Stopped(_logger);
        Metrics.Dispose();
    }

    private async Task<bool> WaitAsync(Task task, TimeSpan timeout)
    {
        try
        {
            await task.WaitAsync(timeout, _time).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
