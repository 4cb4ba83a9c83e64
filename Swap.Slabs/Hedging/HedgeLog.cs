using Microsoft.Extensions.Logging;

namespace Swap.Slabs.Hedging;

/// <summary>Log messages of hedged reads (event ids 370-379, inside the slab layer's 350-399).</summary>
internal static partial class HedgeLog
{
    [LoggerMessage(370, LogLevel.Information, "Hedged reads: a READ a daemon has not answered within {Multiplier} x its link's recent median (at least {FloorMicroseconds} µs, at most {CapMilliseconds} ms) is read from the backup disk too; the first answer wins")]
    public static partial void Hedging(ILogger logger, double multiplier, double floorMicroseconds, double capMilliseconds);

    [LoggerMessage(371, LogLevel.Information, "Hedged reads are off: a READ waits for its daemon (up to the daemon timeout)")]
    public static partial void NotHedging(ILogger logger);
}
