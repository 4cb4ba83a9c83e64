using Microsoft.Extensions.Logging;

namespace Swap.Nbd.Server.Hosting;

/// <summary>Source-generated log messages of the NBD server's host (listeners, accept, stop), with stable event ids;
/// a connection's own events (5-10, 14, 15, 17) are in <see cref="ConnectionLog"/>.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Information, "Listening on {EndPoint}")]
    public static partial void Listening(ILogger logger, string endPoint);

    // Event id 2 (the export and its backend) is logged by the host that chose the device: Swap.Server.ServerLog.

    [LoggerMessage(3, LogLevel.Debug, "Connection {Id} from {Remote} accepted")]
    public static partial void Accepted(ILogger logger, long id, string remote);

    [LoggerMessage(4, LogLevel.Warning, "Connection from {Remote} refused: {Limit} connections already open")]
    public static partial void TooManyConnections(ILogger logger, string remote, int limit);

    [LoggerMessage(11, LogLevel.Information, "Stopping: {Connections} connections open")]
    public static partial void Stopping(ILogger logger, int connections);

    [LoggerMessage(12, LogLevel.Warning, "Stopped with {Connections} connections closed forcibly after the shutdown timeout")]
    public static partial void ForcedClose(ILogger logger, int connections);

    [LoggerMessage(13, LogLevel.Error, "Accept loop on {EndPoint} failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception, string endPoint);

    [LoggerMessage(16, LogLevel.Information, "Stopped")]
    public static partial void Stopped(ILogger logger);

    // 17 is ConnectionLog.WaitingForBudget.

    [LoggerMessage(18, LogLevel.Warning, "TCP endpoint {EndPoint} serves the export: whoever can connect to it reads and writes the whole device " +
        "(every swapped page); only give --listen for a client that cannot use the Unix socket, on an address only it can reach")]
    public static partial void TcpExport(ILogger logger, string endPoint);

    [LoggerMessage(19, LogLevel.Warning, "Connection {Id} from {Remote} closed in its handshake to admit connection {NewId} from {NewRemote}: " +
        "{Limit} connections were already handshaking on that listener (MaxHandshakes)")]
    public static partial void HandshakeEvicted(ILogger logger, long id, string remote, long newId, string newRemote, int limit);

    [LoggerMessage(20, LogLevel.Warning, "Socket directory {Directory} was mode {Mode}: set to 700, so only the server's user can reach the socket")]
    public static partial void SocketDirectoryTightened(ILogger logger, string directory, string mode);
}
