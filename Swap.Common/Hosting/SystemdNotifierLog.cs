using Microsoft.Extensions.Logging;

namespace Swap.Common.Hosting;

/// <summary>Source-generated log messages of <see cref="SystemdNotifier"/>, with stable event ids (910–919).</summary>
internal static partial class SystemdNotifierLog
{
    [LoggerMessage(910, LogLevel.Information, "Told the service manager {State} ({Variable}={Socket})")]
    private static partial void Sent(ILogger logger, string state, string variable, string socket);

    [LoggerMessage(911, LogLevel.Warning,
        "Cannot tell the service manager {State} ({Variable}={Socket}): {Error}. A Type=notify unit waits for READY=1 until " +
        "its TimeoutStartSec; check that systemd started this process (NotifyAccess=main) or unset {Variable}")]
    private static partial void Failed(ILogger logger, string state, string variable, string socket, string error);

    public static void Sent(ILogger logger, string state, string socket) => Sent(logger, state, SystemdNotifier.SocketVariable, socket);

    public static void Failed(ILogger logger, string state, string socket, string error) =>
        Failed(logger, state, SystemdNotifier.SocketVariable, socket, error);
}
