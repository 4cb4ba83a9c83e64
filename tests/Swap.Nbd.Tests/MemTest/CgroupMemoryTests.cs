using NUnit.Framework;
using Swap.MemTest;

namespace Swap.Nbd.Tests.MemTest;

/// <summary>
/// How swapnbd-memtest finds its own memory cgroup and limit from fixture copies of /proc/self/cgroup and
/// /proc/self/mountinfo, as on a host and as inside a container (where /sys/fs/cgroup/memory is the container's group).
/// </summary>
[Category(Tier.Unit)]
public sealed class CgroupMemoryTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("memtest-cgroup-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void On_a_v1_host_the_group_path_is_appended_to_the_memory_mount()
    {
        Limit("v1/memory/a/b/memory.limit_in_bytes", "268435456\n");
        Limit("v1/cpu/a/b/memory.limit_in_bytes", "1048576\n"); // another controller's mount is never read
        var found = Current("5:devices:/\n4:memory:/a/b\n3:cpu,cpuacct:/a/b\n0::/\n",
            Mount(30, "/", "v1/cpu", "cgroup", "rw,cpu,cpuacct"),
            Mount(31, "/", "v1/memory", "cgroup", "rw,memory"));
        Assert.That(found, Is.EqualTo(new CgroupMemory("/a/b", 256L << 20)));
    }

    [Test]
    public void In_a_docker_container_on_v1_the_mount_root_is_the_containers_own_group()
    {
        // Docker on cgroup v1 (no cgroup namespace): /proc/self/cgroup names the host's path, the container's
        // /sys/fs/cgroup/memory shows just that group, and its mountinfo root says which one.
        Limit("memory/memory.limit_in_bytes", "268435456\n");
        var found = Current("12:memory:/docker/0123abcd\n11:pids:/docker/0123abcd\n",
            Mount(40, "/docker/0123abcd", "pids", "cgroup", "rw,pids"),
            Mount(41, "/docker/0123abcd", "memory", "cgroup", "rw,memory"));
        Assert.That(found, Is.EqualTo(new CgroupMemory("/docker/0123abcd", 256L << 20)));
    }

    [Test]
    public void With_a_cgroup_namespace_on_v2_the_group_is_the_mount_itself()
    {
        Limit("unified/memory.max", "268435456\n");
        var found = Current("0::/\n", Mount(50, "/", "unified", "cgroup2", "rw,nsdelegate"));
        Assert.That(found, Is.EqualTo(new CgroupMemory("/", 256L << 20)));
    }

    [Test]
    public void On_a_v2_host_max_means_no_limit_and_a_number_is_the_limit()
    {
        Limit("unified/g/memory.max", "max\n");
        const string Cgroup = "0::/g\n";
        var mount = Mount(50, "/", "unified", "cgroup2", "rw");
        Assert.That(Current(Cgroup, mount), Is.EqualTo(new CgroupMemory("/g", null)));
        Limit("unified/g/memory.max", "67108864\n");
        Assert.That(Current(Cgroup, mount), Is.EqualTo(new CgroupMemory("/g", 64L << 20)));
    }

    [Test]
    public void The_v1_memory_controller_wins_over_the_unified_line()
    {
        Limit("v1/memory/a/memory.limit_in_bytes", "134217728\n");
        Limit("unified/a/memory.max", "67108864\n");
        var found = Current("4:memory:/a\n0::/a\n", Mount(31, "/", "v1/memory", "cgroup", "rw,memory"), Mount(32, "/", "unified", "cgroup2", "rw"));
        Assert.That(found, Is.EqualTo(new CgroupMemory("/a", 128L << 20)));
    }

    [Test]
    public void A_mount_of_another_part_of_the_hierarchy_gives_no_limit_and_an_unlimited_group_none()
    {
        Limit("memory/memory.limit_in_bytes", "268435456\n");
        Assert.That(Current("4:memory:/elsewhere\n", Mount(41, "/docker/0123abcd", "memory", "cgroup", "rw,memory")),
            Is.EqualTo(new CgroupMemory("/elsewhere", null)), "/docker/0123abcd is not an ancestor of /elsewhere");
        Assert.That(Current("4:memory:/docker/0123abcdef\n", Mount(41, "/docker/0123abcd", "memory", "cgroup", "rw,memory")),
            Is.EqualTo(new CgroupMemory("/docker/0123abcdef", null)), "a prefix of the name is not an ancestor");

        Limit("memory/memory.limit_in_bytes", "9223372036854771712\n"); // v1's page-rounded LONG_MAX
        Assert.That(Current("4:memory:/docker/0123abcd\n", Mount(41, "/docker/0123abcd", "memory", "cgroup", "rw,memory")),
            Is.EqualTo(new CgroupMemory("/docker/0123abcd", null)));
    }

    [Test]
    public void Escaped_mount_points_are_read_and_missing_files_give_null()
    {
        Limit("with space/memory.limit_in_bytes", "1048576\n");
        Assert.That(Current("4:memory:/\n", Mount(41, "/", "with\\040space", "cgroup", "rw,memory")), Is.EqualTo(new CgroupMemory("/", 1L << 20)));
        Assert.That(CgroupMemory.Current(Path.Combine(_dir, "no-such-cgroup"), Path.Combine(_dir, "no-such-mountinfo")), Is.Null);
        Assert.That(Current("4:memory:/\n"), Is.EqualTo(new CgroupMemory("/", null)), "no mountinfo line: the group without a limit");
    }

    private void Limit(string relative, string text)
    {
        var path = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    // A mountinfo line for a mount point under the fixture directory (mountinfo escapes paths, the fixture too).
    private string Mount(int id, string root, string mountPoint, string type, string superOptions) =>
        $"{id} 25 0:{id} {root} {_dir.Replace(" ", "\\040", StringComparison.Ordinal)}/{mountPoint} rw,nosuid,nodev,noexec,relatime shared:{id} - {type} {type} {superOptions}";

    private CgroupMemory? Current(string cgroup, params string[] mounts)
    {
        var proc = Path.Combine(_dir, "cgroup");
        var mountInfo = Path.Combine(_dir, "mountinfo");
        File.WriteAllText(proc, cgroup);
        File.WriteAllText(mountInfo, "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n" + string.Join('\n', mounts) + "\n");
        return CgroupMemory.Current(proc, mountInfo);
    }
}
