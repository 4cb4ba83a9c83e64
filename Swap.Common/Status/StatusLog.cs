using Microsoft.Extensions.Logging;

namespace Swap.Common.Status;

/// <summary>Source-generated log messages of the status files (swapnbd-server's and swapnbd-daemon's), event ids 60-69.</summary>
internal static partial class StatusLog
{
    [LoggerMessage(60, LogLevel.Warning, "Status file {Path} cannot be written: {Reason}")]
    public static partial void WriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(61, LogLevel.Information, "Status file {Path} is written again")]
    public static partial void Recovered(ILogger logger, string path);
}
