using Microsoft.Extensions.Logging;

namespace Swap.Server.Portal;

/// <summary>Log messages of the portal reloads (event ids 28-31, beside the server host's).</summary>
internal static partial class PortalLog
{
    [LoggerMessage(28, LogLevel.Information, "Portal {Portal}: {Count} daemons; joining: [{Added}]; draining: [{Removed}]")]
    public static partial void Changed(ILogger logger, string portal, int count, string added, string removed);

    [LoggerMessage(29, LogLevel.Warning, "Portal {Portal} not applied: {Reason}; keeping the last good list ({Count} daemons) and trying again in {Retry}")]
    public static partial void KeptLastGood(ILogger logger, string portal, string reason, int count, TimeSpan retry);

    [LoggerMessage(30, LogLevel.Information, "Portal {Portal}: reload requested (SIGHUP)")]
    public static partial void ReloadRequested(ILogger logger, string portal);

    [LoggerMessage(31, LogLevel.Information, "Portal {Portal}: good again ({Count} daemons, unchanged)")]
    public static partial void Recovered(ILogger logger, string portal, int count);
}
