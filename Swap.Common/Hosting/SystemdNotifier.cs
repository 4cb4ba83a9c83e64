using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Swap.Common.Hosting;

/// <summary>
/// sd_notify(3) without libsystemd: state lines (READY=1, STOPPING=1, STATUS=...) as one datagram to the Unix socket
/// that $NOTIFY_SOCKET names ('@' at the start: the abstract namespace), so a Type=notify unit knows when the
/// service serves and when it stops. Without $NOTIFY_SOCKET (not started by systemd) it does nothing.
/// </summary>
public sealed class SystemdNotifier
{
    public const string SocketVariable = "NOTIFY_SOCKET";

    private readonly string? _socket;
    private readonly ILogger _logger;

    /// <param name="socket">The socket address; null reads $NOTIFY_SOCKET.</param>
    public SystemdNotifier(ILogger logger, string? socket = null)
    {
        _logger = logger;
        _socket = socket ?? Environment.GetEnvironmentVariable(SocketVariable);
        if (_socket?.Length == 0)
        {
            _socket = null;
        }
    }

    /// <summary>Whether a service manager listens ($NOTIFY_SOCKET is set).</summary>
    public bool Enabled => _socket is not null;

    /// <summary>READY=1: start-up is over, the service serves (systemd starts the units ordered after this one).</summary>
    public bool Ready(string status) => Send("READY=1\nSTATUS=" + status);

    /// <summary>STOPPING=1: a stop began (requests in flight are being answered).</summary>
    public bool Stopping(string status) => Send("STOPPING=1\nSTATUS=" + status);

    /// <summary>Sends <paramref name="state"/> (newline-separated assignments); false, with a warning logged, when it could not.</summary>
    public bool Send(string state)
    {
        if (_socket is null)
        {
            return false;
        }

        if (_socket[0] is not ('/' or '@'))
        {
            SystemdNotifierLog.Failed(_logger, FirstLine(state), _socket, "only a path or an @abstract Unix socket name is supported");
            return false;
        }

        // Abstract names start with a NUL byte on the wire; systemd writes it as '@'.
        var address = _socket[0] == '@' ? "\0" + _socket[1..] : _socket;
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            // A full queue of the service manager must not hold up start or stop: the send fails instead (EAGAIN).
            socket.Blocking = false;
            socket.SendTo(Encoding.UTF8.GetBytes(state), new UnixDomainSocketEndPoint(address));
            SystemdNotifierLog.Sent(_logger, FirstLine(state), _socket);
            return true;
        }
        catch (SocketException ex)
        {
            SystemdNotifierLog.Failed(_logger, FirstLine(state), _socket, ex.Message);
            return false;
        }
    }

    private static string FirstLine(string state) => state.Split('\n', 2)[0];
}
