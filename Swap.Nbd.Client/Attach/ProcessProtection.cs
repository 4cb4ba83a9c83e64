using System.Runtime.InteropServices;

namespace Swap.Nbd.Client.Attach;

/// <summary>
/// Keeps a persisting client alive and resident while the machine swaps through its device: mlockall and
/// oom_score_adj -1000, as nbd-client -swap does. Best effort: each failure is a warning, not an error.
/// </summary>
internal static partial class ProcessProtection
{
    private const int McurrentAndFuture = 1 | 2;

    /// <summary>Applies both protections and returns one warning per protection that failed.</summary>
    public static IReadOnlyList<string> Apply()
    {
        var warnings = new List<string>();
        if (mlockall(McurrentAndFuture) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            warnings.Add($"mlockall(MCL_CURRENT|MCL_FUTURE) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}); the client's pages can be swapped out, which can deadlock a reconnect under memory pressure");
        }

        try
        {
            File.WriteAllText("/proc/self/oom_score_adj", "-1000");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"cannot set oom_score_adj to -1000: {ex.Message}; the OOM killer may pick this client");
        }

        return warnings;
    }

    /// <summary>VmLck and VmRSS from /proc/self/status, for the log.</summary>
    public static string LockedMemory()
    {
        try
        {
            var fields = File.ReadLines("/proc/self/status")
                .Where(l => l.StartsWith("VmLck:", StringComparison.Ordinal) || l.StartsWith("VmRSS:", StringComparison.Ordinal))
                .Select(l => l.Replace("\t", " ", StringComparison.Ordinal).Trim());
            return string.Join(", ", fields);
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mlockall(int flags);
}
