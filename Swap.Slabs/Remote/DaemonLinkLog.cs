using Microsoft.Extensions.Logging;

namespace Swap.Slabs.Remote;

/// <summary>Log messages of the server's daemon connections (event ids 300-349).</summary>
internal static partial class DaemonLinkLog
{
    [LoggerMessage(300, LogLevel.Warning, "Daemon {EndPoint} link down: {Reason}")]
    public static partial void LinkDown(ILogger logger, string endPoint, string reason);

    [LoggerMessage(301, LogLevel.Information, "Daemon {EndPoint} joined (daemon id {DaemonId:x}, up to {MaxSlabs} slabs)")]
    public static partial void Joined(ILogger logger, string endPoint, ulong daemonId, uint maxSlabs);

    [LoggerMessage(303, LogLevel.Warning, "Daemon {EndPoint}: a request's continuation blocked the receive thread for over {Milliseconds} ms; a new receive thread takes over")]
    public static partial void ReceiverReplaced(ILogger logger, string endPoint, double milliseconds);

    [LoggerMessage(302, LogLevel.Warning, "Daemon {EndPoint} unreachable: {Reason}")]
    public static partial void ConnectFailed(ILogger logger, string endPoint, string reason);

    [LoggerMessage(304, LogLevel.Error, "Daemon {EndPoint} refused: {Reason}")]
    public static partial void AuthFailed(ILogger logger, string endPoint, string reason);

    [LoggerMessage(305, LogLevel.Warning, "Daemon {EndPoint}: connecting without authentication (--insecure-no-auth); whoever answers on that address gets this server's pages")]
    public static partial void Insecure(ILogger logger, string endPoint);
}
