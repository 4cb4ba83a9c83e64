using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A cgroup v1 memory group for a test workload, created inside the test process's own memory cgroup (so whatever
/// accounts for the test run accounts for it too) and removed on disposal, its processes killed first.
/// </summary>
internal sealed class MemoryCgroup : IDisposable
{
    private const string Root = "/sys/fs/cgroup/memory";

    private MemoryCgroup(string path) => Path = path;

    /// <summary>The group's directory under /sys/fs/cgroup/memory.</summary>
    public string Path { get; }

    public string Tasks => System.IO.Path.Combine(Path, "tasks");

    /// <summary>Creates NAME with memory.limit_in_bytes = <paramref name="limit"/>; fails the test when cgroup v1's memory controller is not there.</summary>
    public static MemoryCgroup Create(string name, long limit)
    {
        if (!File.Exists(System.IO.Path.Combine(Root, "memory.limit_in_bytes")))
        {
            Assert.Fail($"these tests need cgroup v1's memory controller at {Root} (root, a kernel with CONFIG_MEMCG)");
        }

        var path = System.IO.Path.Combine(OwnPath(), name);
        Directory.CreateDirectory(path);
        var group = new MemoryCgroup(path);
        try
        {
            File.WriteAllText(System.IO.Path.Combine(path, "memory.limit_in_bytes"), limit.ToString(CultureInfo.InvariantCulture));
        }
        catch
        {
            group.Dispose();
            throw;
        }

        return group;
    }

    /// <summary>The v1 memory cgroup this process runs in, as a directory.</summary>
    public static string OwnPath()
    {
        var own = File.ReadAllLines("/proc/self/cgroup").Select(l => l.Split(':', 3))
            .FirstOrDefault(p => p.Length == 3 && p[1].Split(',').Contains("memory"))?[2] ?? "/";
        return Root + own.TrimEnd('/');
    }

    /// <summary>A memory.stat value of this group (e.g. "swap", "rss"), in bytes.</summary>
    public long Stat(string key)
    {
        foreach (var line in File.ReadLines(System.IO.Path.Combine(Path, "memory.stat")))
        {
            var parts = line.Split(' ');
            if (parts.Length == 2 && parts[0] == key)
            {
                return long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"memory.stat of {Path} has no '{key}'");
    }

    /// <summary>The processes still in the group.</summary>
    public IReadOnlyList<int> Pids() =>
        Directory.Exists(Path) ? File.ReadAllLines(Tasks).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToList() : [];

    public void Dispose()
    {
        for (var attempt = 0; attempt < 50 && Directory.Exists(Path); attempt++)
        {
            foreach (var pid in Pids())
            {
                try
                {
                    System.Diagnostics.Process.GetProcessById(pid).Kill();
                }
                catch (ArgumentException)
                {
                    // Gone already.
                }
            }

            try
            {
                Directory.Delete(Path); // rmdir: a cgroup's control files are not real files
            }
            catch (IOException)
            {
                Thread.Sleep(100); // EBUSY while the killed processes are still exiting
            }
        }
    }
}
