using System.Text;

namespace Swap.MemTest;

/// <summary>One cgroup or cgroup2 line of /proc/self/mountinfo: which part of the hierarchy is mounted where.</summary>
internal sealed record CgroupMount(string Root, string MountPoint, bool Unified, string[] Options)
{
    public static List<CgroupMount> ReadAll(string mountInfo)
    {
        var mounts = new List<CgroupMount>();
        IEnumerable<string> lines;
        try
        {
            lines = File.ReadAllLines(mountInfo);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return mounts;
        }

        // "36 25 0:31 /docker/ID /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory": fields 4 and 5 are the
        // root and the mount point, then optional fields up to "-", then type, source and super options.
        foreach (var line in lines)
        {
            var fields = line.Split(' ');
            var dash = fields.Length > 6 ? Array.IndexOf(fields, "-", 6) : -1;
            if (dash < 0 || fields.Length < dash + 4 || fields[dash + 1] is not ("cgroup" or "cgroup2"))
            {
                continue;
            }

            mounts.Add(new CgroupMount(Unescape(fields[3]), Unescape(fields[4]), fields[dash + 1] == "cgroup2", fields[dash + 3].Split(',')));
        }

        return mounts;
    }

    /// <summary>Where <paramref name="group"/> is in this mount; null when the mount shows another part of the hierarchy.</summary>
    public string? DirectoryOf(string group)
    {
        var root = Root.TrimEnd('/');
        if (group != root && !group.StartsWith(root + "/", StringComparison.Ordinal))
        {
            return null;
        }

        var below = group[root.Length..].Trim('/');
        return below.Length == 0 ? MountPoint : System.IO.Path.Combine(MountPoint, below);
    }

    // mountinfo writes space, tab, newline and backslash in paths as \ooo (octal).
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var text = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                text.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                text.Append(field[i]);
            }
        }

        return text.ToString();
    }

    private static bool IsOctal(string field, int start) =>
        start + 3 <= field.Length && field.AsSpan(start, 3).IndexOfAnyExceptInRange('0', '7') < 0;
}
