using Microsoft.Extensions.Logging;

namespace Swap.Nbd.Server;

/// <summary>Source-generated log messages of one client connection (handshake and transmission), with stable event ids
/// shared with the host's <c>ServerLog</c>.</summary>
internal static partial class ConnectionLog
{
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

    [LoggerMessage(14, LogLevel.Debug, "Connection {Id}: closed by I/O error: {Reason}")]
    public static partial void IoClosed(ILogger logger, long id, string reason);

    [LoggerMessage(15, LogLevel.Error, "Connection {Id}: unexpected failure")]
    public static partial void Unexpected(ILogger logger, Exception exception, long id);

    [LoggerMessage(26, LogLevel.Error, "Connection {Id}: {Command} at {Offset}+{Length} failed unexpectedly (answered EIO; a bug below the device interface)")]
    public static partial void RequestFailed(ILogger logger, Exception exception, long id, string command, ulong offset, uint length);

    [LoggerMessage(17, LogLevel.Debug, "Connection {Id}: waiting for its requests in flight before starting one of {Bytes} bytes (buffer budget)")]
    public static partial void WaitingForBudget(ILogger logger, long id, uint bytes);
}
