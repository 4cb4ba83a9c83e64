using Microsoft.Extensions.Logging;

namespace Swap.Nbd.Server.Hosting;

/// <summary>Source-generated log messages of the NBD server, with stable event ids.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Information, "Listening on {EndPoint}")]
    public static partial void Listening(ILogger logger, string endPoint);

    // Event id 2 (the export and its backend) is logged by the host that chose the device: Swap.Server.ServerLog.

    [LoggerMessage(3, LogLevel.Debug, "Connection {Id} from {Remote} accepted")]
    public static partial void Accepted(ILogger logger, long id, string remote);

    [LoggerMessage(4, LogLevel.Warning, "Connection from {Remote} refused: {Limit} connections already open")]
    public static partial void TooManyConnections(ILogger logger, string remote, int limit);

    [LoggerMessage(5, LogLevel.Debug, "Connection {Id} closed")]
    public static partial void Closed(ILogger logger, long id);

    [LoggerMessage(6, LogLevel.Warning, "Connection {Id} dropped: {Reason}")]
    public static partial void ProtocolViolation(ILogger logger, long id, string reason);

    [LoggerMessage(7, LogLevel.Warning, "Connection {Id}: handshake did not finish within {Timeout}")]
    public static partial void HandshakeTimeout(ILogger logger, long id, TimeSpan timeout);

    [LoggerMessage(8, LogLevel.Debug, "Connection {Id}: option {Option} answered {Reply}")]
    public static partial void Option(ILogger logger, long id, uint option, string reply);

    [LoggerMessage(9, LogLevel.Debug, "Connection {Id}: entering transmission (structured replies: {Structured})")]
    public static partial void Transmission(ILogger logger, long id, bool structured);

    [LoggerMessage(10, LogLevel.Error, "Connection {Id}: {Command} at {Offset}+{Length} failed: {Error}")]
    public static partial void DeviceError(ILogger logger, long id, string command, ulong offset, uint length, string error);

    [LoggerMessage(11, LogLevel.Information, "Stopping: {Connections} connections open")]
    public static partial void Stopping(ILogger logger, int connections);

    [LoggerMessage(12, LogLevel.Warning, "Stopped with {Connections} connections closed forcibly after the shutdown timeout")]
    public static partial void ForcedClose(ILogger logger, int connections);

    [LoggerMessage(13, LogLevel.Error, "Accept loop on {EndPoint} failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception, string endPoint);

    [LoggerMessage(14, LogLevel.Debug, "Connection {Id}: closed by I/O error: {Reason}")]
    public static partial void IoClosed(ILogger logger, long id, string reason);

    [LoggerMessage(15, LogLevel.Error, "Connection {Id}: unexpected failure")]
    public static partial void Unexpected(ILogger logger, Exception exception, long id);

    [LoggerMessage(16, LogLevel.Information, "Stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(17, LogLevel.Debug, "Connection {Id}: waiting for its requests in flight before starting one of {Bytes} bytes (buffer budget)")]
    public static partial void WaitingForBudget(ILogger logger, long id, uint bytes);
}
