using System.Globalization;

namespace Swap.MemTest;

/// <summary>The memory cgroup this process runs in and its limit (cgroup v1 memory controller or v2), for the summary line.</summary>
public sealed record CgroupMemory(string Path, long? Limit)
{
    /// <summary>
    /// Reads /proc/self/cgroup for the group and /proc/self/mountinfo for where its controller is mounted; null when
    /// there is no memory cgroup to name. The mount matters inside a container: there /sys/fs/cgroup/memory is the
    /// container's own group (mountinfo root /docker/ID, or "/" with a cgroup namespace, where /proc/self/cgroup says
    /// "/" too), so the group's path must be taken relative to the mount's root, not appended to /sys/fs/cgroup.
    /// </summary>
    public static CgroupMemory? Current(string procCgroup = "/proc/self/cgroup", string mountInfo = "/proc/self/mountinfo")
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(procCgroup);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var mounts = CgroupMount.ReadAll(mountInfo);
        CgroupMemory? unified = null;
        foreach (var line in lines)
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3)
            {
                continue;
            }

            if (parts[1].Split(',').Contains("memory"))
            {
                return new CgroupMemory(parts[2], ReadLimit(mounts.Where(m => !m.Unified && m.Options.Contains("memory")), parts[2], "memory.limit_in_bytes"));
            }

            if (parts[0] == "0" && parts[1].Length == 0)
            {
                unified = new CgroupMemory(parts[2], ReadLimit(mounts.Where(m => m.Unified), parts[2], "memory.max"));
            }
        }

        return unified;
    }

    // The first mount of the controller whose root is the group or one of its ancestors holds the group's directory.
    private static long? ReadLimit(IEnumerable<CgroupMount> mounts, string group, string file)
    {
        foreach (var mount in mounts)
        {
            if (mount.DirectoryOf(group) is { } directory && ReadLimit(System.IO.Path.Combine(directory, file)) is { } limit)
            {
                return limit;
            }
        }

        return null;
    }

    // "max" (v2) and v1's huge page-rounded LONG_MAX both mean no limit.
    private static long? ReadLimit(string file)
    {
        try
        {
            var text = File.ReadAllText(file).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value < (1L << 60) ? value : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
