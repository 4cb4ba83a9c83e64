using System.Globalization;

namespace Swap.MemTest;

/// <summary>The memory cgroup this process runs in and its limit (cgroup v1 memory controller or v2), for the summary line.</summary>
public sealed record CgroupMemory(string Path, long? Limit)
{
    /// <summary>Reads /proc/self/cgroup; null when there is no memory cgroup to name.</summary>
    public static CgroupMemory? Current(string procCgroup = "/proc/self/cgroup", string mountRoot = "/sys/fs/cgroup")
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(procCgroup);
        }
        catch (IOException)
        {
            return null;
        }

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
                return new CgroupMemory(parts[2], ReadLimit(System.IO.Path.Combine(mountRoot, "memory", parts[2].TrimStart('/'), "memory.limit_in_bytes")));
            }

            if (parts[0] == "0" && parts[1].Length == 0)
            {
                unified = new CgroupMemory(parts[2], ReadLimit(System.IO.Path.Combine(mountRoot, parts[2].TrimStart('/'), "memory.max")));
            }
        }

        return unified;
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
