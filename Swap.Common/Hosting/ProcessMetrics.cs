using System.Diagnostics.Metrics;
using System.Globalization;

namespace Swap.Common.Hosting;

/// <summary>
/// The process's memory as the kernel counts it (meter <see cref="MeterName"/>): resident set and locked bytes from
/// /proc/self/status, read when a collector asks. A swap server whose locked memory falls below its resident set has
/// pages the kernel may swap out (<see cref="ProcessGuard"/>).
/// </summary>
public sealed class ProcessMetrics : IDisposable
{
    public const string MeterName = "SwapNbd.Process";

    private readonly Meter _meter = new(MeterName);

    public ProcessMetrics(string statusPath = "/proc/self/status")
    {
        _meter.CreateObservableGauge("swapnbd.process.memory.resident", () => Read(statusPath, "VmRSS:"), "By", "resident set size (VmRSS)");
        _meter.CreateObservableGauge("swapnbd.process.memory.locked", () => Read(statusPath, "VmLck:"), "By", "memory locked by mlockall (VmLck)");
    }

    /// <summary>The "KEY: N kB" line of a /proc status file in bytes; 0 when the line is missing.</summary>
    public static long Read(string path, string key)
    {
        foreach (var line in File.ReadLines(path))
        {
            if (!line.StartsWith(key, StringComparison.Ordinal))
            {
                continue;
            }

            var value = line.AsSpan(key.Length).Trim();
            var space = value.IndexOf(' ');
            return long.TryParse(space < 0 ? value : value[..space], NumberStyles.None, CultureInfo.InvariantCulture, out var kib) ? kib * 1024 : 0;
        }

        return 0;
    }

    public void Dispose() => _meter.Dispose();
}
