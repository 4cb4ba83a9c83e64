using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.Common.Hosting;
using Swap.Daemon.Protocol;
using Swap.Donor.Slabs;
using Swap.Donor.Transport;

namespace Swap.Donor.Connections;

/// <summary>
/// One server connection to the donor, from accept to close: a blocking receive thread that runs the
/// <see cref="DonorReceiver"/> (framing) and the <see cref="DonorRequestDispatcher"/> (answers, in order; memory
/// operations do not block), replies going out through the <see cref="DonorReplyBatcher"/>, and the HELLO timer.
/// </summary>
internal sealed class DonorConnection : IClientConnection
{
    /// <summary>Size of each of a connection's three pinned buffers (input, frame, output).</summary>
    internal const int BufferSize = 256 * 1024;

    private readonly DonorDaemon _daemon;
    private readonly IDonorTransport _transport;
    private readonly ILogger _logger;
    private readonly DonorReplyBatcher _replies;
    private readonly DonorRequestDispatcher _dispatcher;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closed;
    private ITimer? _helloTimer;

    public DonorConnection(long id, string remote, IDonorTransport transport, DonorDaemon daemon, ILogger logger)
    {
        Id = id;
        Remote = remote;
        _transport = transport;
        _daemon = daemon;
        _logger = logger;
        _replies = new DonorReplyBatcher(transport);
        _dispatcher = new DonorRequestDispatcher(this, daemon, new DonorReceiver(transport, _replies), _replies, new DonorHandshake(this, daemon, logger), logger);
        _helloTimer = daemon.StartHelloTimer(this);
    }

    public long Id { get; }

    /// <summary>The peer's address, for the log lines that refuse it.</summary>
    public string Remote { get; }

    /// <summary>Its place in the daemon's connection budget; set at accept, before <see cref="Start"/>.</summary>
    public BudgetTicket<DonorConnection>? Ticket { get; set; }

    /// <summary>Set by a successful HELLO.</summary>
    public DonorClient? Client { get; set; }

    public Task Completion => _done.Task;

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public void Start()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = $"donor-conn-{Id}" };
        thread.Start();
    }

    /// <summary>Closes the transport; the receive thread ends and the daemon is told.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _helloTimer?.Dispose();

        try
        {
            _transport.Shutdown();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        _transport.Dispose();
    }

    /// <summary>Sends an EVICTED notice (request id 0); called off the receive thread, failures only mean the connection is gone.</summary>
    public void SendEvicted(uint slabId, uint epoch)
    {
        Span<byte> frame = stackalloc byte[DaemonFrameHeader.Size + SlabRange.SlabOnlySize];
        DaemonFrameHeader.For(DaemonOpcode.Evicted, DaemonStatus.Ok, 0, SlabRange.SlabOnlySize).Write(frame);
        new SlabRange(slabId, epoch, 0, 0).WriteSlabOnly(frame[DaemonFrameHeader.Size..]);
        try
        {
            _replies.SendNow(frame);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            Close();
        }
    }

    /// <summary>The HELLO timer fired: closes the connection if it still speaks for no client.</summary>
    internal void HelloTimedOut()
    {
        if (Client is null && !IsClosed)
        {
            DonorLog.NoHello(_logger, Id, _daemon.HelloTimeout);
            Close();
        }
    }

    /// <summary>
    /// The handshake is complete (HELLO, then AUTH verified): the connection speaks for a client now, the HELLO
    /// timer is done, and it leaves the handshake budget for one of the daemon's connection places. The one place
    /// where a connection becomes established: when no place is left (or it was closed meanwhile for a newer
    /// handshake) it is closed here, and its reply goes nowhere.
    /// </summary>
    internal void HelloDone(ulong clientId)
    {
        _helloTimer?.Dispose();
        if (!_daemon.Establish(this))
        {
            Close();
            return;
        }

        DonorLog.Hello(_logger, Id, clientId);
    }

    private void Run()
    {
        try
        {
            while (!IsClosed && _dispatcher.ServeOne())
            {
            }
        }
        catch (DaemonProtocolException ex)
        {
            DonorLog.ProtocolViolation(_logger, Id, ex.Message);
        }
        catch (EndOfStreamException)
        {
            if (!IsClosed)
            {
                DonorLog.ProtocolViolation(_logger, Id, "connection closed in the middle of a frame");
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The peer went away or the daemon closed us.
        }
        catch (Exception ex)
        {
            DonorLog.ConnectionFailed(_logger, ex, Id);
        }
        finally
        {
            Close();
            _daemon.OnConnectionClosed(this);
            DonorLog.Closed(_logger, Id);
            _done.TrySetResult();
        }
    }
}
