namespace Swap.Common.Status;

/// <summary>What the status files of swapnbd-server and swapnbd-daemon have in common: how often, the last state, when a file is stale.</summary>
public static class StatusFile
{
    /// <summary>How often a running process rewrites its status file.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>A file older than this that still says its process runs is stale: the process is likely gone.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(5);

    /// <summary>The state a process leaves in its status file when it stops.</summary>
    public const string Stopped = "stopped";

    /// <summary>True if <paramref name="status"/> says its process runs but was written more than <see cref="StaleAfter"/> before <paramref name="now"/>.</summary>
    public static bool IsStale(IStatusSnapshot status, DateTimeOffset now) =>
        status.State != Stopped && now - status.Time > StaleAfter;

    /// <summary>"status N s old", with the question a stale file raises about <paramref name="program"/>.</summary>
    public static string Age(IStatusSnapshot status, DateTimeOffset now, string program) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"status {(now - status.Time).TotalSeconds:0} s old{(IsStale(status, now) ? $": is {program} still running?" : "")}");

    /// <summary>Why <paramref name="path"/> cannot be a status file, starting with <paramref name="key"/>; null if it can.</summary>
    public static string? Check(string key, string path, string example) =>
        path.Length == 0 || !Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(path)))
            ? $"{key}: '{path}' is not a file path in an existing directory (e.g. {example})"
            : null;
}
