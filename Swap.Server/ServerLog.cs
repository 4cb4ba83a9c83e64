using Microsoft.Extensions.Logging;

namespace Swap.Server;

/// <summary>Source-generated log messages of the swapnbd-server host, with event ids beside the NBD server's.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(2, LogLevel.Information, "Export '{Name}': {Size} bytes, backend {Backend}, flags {Flags}")]
    public static partial void Export(ILogger logger, string name, long size, string backend, string flags);

    [LoggerMessage(27, LogLevel.Information, "Metrics in Prometheus' text format on {Url}")]
    public static partial void Metrics(ILogger logger, string url);
}
