using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A dockerd of the test's own (Debian's docker.io): its own data root, exec root (where it starts its own
/// containerd), socket and pid file in a temp directory, no iptables and no bridge (containers run with
/// --network none), the vfs storage driver (works on any filesystem), and containers placed in cgroups below the
/// test process's own memory cgroup. Disposal removes every container, stops dockerd and its containerd, unmounts
/// what they left and deletes the directory and the cgroups it made. No registry is reachable: images come from
/// <c>ImportAsync</c>.
/// </summary>
internal sealed class DockerDaemon : IAsyncDisposable
{
    public const string Client = "/usr/bin/docker";

    private readonly RunningExe _daemon;
    private readonly List<string> _createdCgroups;

    private DockerDaemon(string directory, RunningExe daemon, string cgroupParent, List<string> createdCgroups)
    {
        Directory = directory;
        _daemon = daemon;
        CgroupParent = cgroupParent;
        _createdCgroups = createdCgroups;
    }

    public string Directory { get; }

    public string Socket => Path.Combine(Directory, "docker.sock");

    /// <summary>Where containers' cgroups go (docker run --cgroup-parent): below this process's memory cgroup.</summary>
    public string CgroupParent { get; }

    public string Log => _daemon.Log;

    public static async Task<DockerDaemon> StartAsync(CancellationToken ct)
    {
        foreach (var (program, package) in new[] { ("/usr/sbin/dockerd", "docker.io"), (Client, "docker.io"), ("/usr/bin/containerd", "containerd"), ("/usr/sbin/runc", "runc") })
        {
            Assert.That(File.Exists(program), Is.True, $"{program} is missing: apt-get install {package} (scripts/setup.sh does)");
        }

        // Short: the socket paths under it must fit a sockaddr_un (108 bytes).
        var directory = System.IO.Directory.CreateTempSubdirectory("swapnbd-docker-").FullName;
        var name = Path.GetFileName(directory);
        var cgroupParent = MemoryCgroup.OwnPath()["/sys/fs/cgroup/memory".Length..] + "/" + name;
        var created = CgroupsToCreate(cgroupParent);
        var daemon = RunningExe.StartProgram("/usr/sbin/dockerd",
        [
            "--data-root", Path.Combine(directory, "data"), "--exec-root", Path.Combine(directory, "exec"),
            "-H", "unix://" + Path.Combine(directory, "docker.sock"), "--pidfile", Path.Combine(directory, "docker.pid"),
            "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-masq=false", "--userland-proxy=false",
            "--storage-driver=vfs", "--containerd-namespace", name, "--containerd-plugins-namespace", name + "-plugins",
            "--log-level=warn",
        ], environment: new Dictionary<string, string> { ["DOCKER_CONFIG"] = directory });
        var docker = new DockerDaemon(directory, daemon, cgroupParent, created);
        try
        {
            for (var i = 0; ; i++)
            {
                Assert.That(daemon.HasExited, Is.False, $"dockerd exited:\n{daemon.Log}");
                if (File.Exists(docker.Socket) && (await docker.RunAsync(["version", "--format", "{{.Server.Version}}"], TimeSpan.FromSeconds(10), ct)).ExitCode == 0)
                {
                    return docker;
                }

                Assert.That(i, Is.LessThan(600), $"dockerd did not answer within 60 s:\n{daemon.Log}");
                await Task.Delay(100, ct);
            }
        }
        catch
        {
            await docker.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs the docker client against this daemon.</summary>
    public Task<ToolResult> RunAsync(IEnumerable<string> args, TimeSpan timeout, CancellationToken ct) =>
        ExternalTool.RunAsync("/usr/bin/env", "coreutils", ["DOCKER_CONFIG=" + Directory, Client, "-H", "unix://" + Socket, .. args], timeout, ct);

    /// <summary>
    /// Builds image <paramref name="tag"/> from <paramref name="executable"/> and the libraries ldd lists for it
    /// (docker import of a tarball: no registry, no base image); the executable is /usr/local/bin/NAME in the image.
    /// </summary>
    public Task ImportAsync(string executable, string tag, CancellationToken ct) =>
        ImportAsync(tag, [(executable, "/usr/local/bin/" + Path.GetFileName(executable))], [], ct);

    /// <summary>
    /// Builds image <paramref name="tag"/> from <paramref name="files"/> (files or whole directories, each to its path
    /// in the image), every library ldd lists for any ELF file among them, and <paramref name="libraries"/> (those a
    /// program opens itself, e.g. OpenSSL for .NET's cryptography), at the same paths as on this host.
    /// </summary>
    public async Task ImportAsync(string tag, IReadOnlyList<(string Source, string Target)> files, IReadOnlyList<string> libraries, CancellationToken ct)
    {
        var root = Path.Combine(Directory, "image-" + tag.Replace(':', '-').Replace('/', '-'));
        var elves = new List<string>();
        foreach (var (source, target) in files)
        {
            var sources = System.IO.Directory.Exists(source) ? System.IO.Directory.GetFiles(source, "*", SearchOption.AllDirectories) : [source];
            foreach (var file in sources)
            {
                var copy = Path.Combine(root, (target + file[source.Length..]).TrimStart('/'));
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
                File.Copy(file, copy);
                if (IsElf(file))
                {
                    elves.Add(file);
                }
            }
        }

        var ldd = await ExternalTool.RunAsync("ldd", "libc-bin", elves, TimeSpan.FromSeconds(60), ct);
        Assert.That(ldd.ExitCode, Is.Zero, ldd.ToString());
        var needed = ldd.Stdout.Split('\n').SelectMany(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .Where(w => w.StartsWith('/') && !w.EndsWith(':')).Concat(libraries).Distinct();
        foreach (var library in needed)
        {
            var target = Path.Combine(root, library.TrimStart('/'));
            if (!File.Exists(target))
            {
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(library, target); // follows the symlink: the file itself, under the name the loader asks for
            }
        }

        var tarball = root + ".tar";
        var tar = await ExternalTool.RunAsync("tar", "tar", ["-C", root, "-cf", tarball, "."], TimeSpan.FromSeconds(120), ct);
        Assert.That(tar.ExitCode, Is.Zero, tar.ToString());
        var import = await RunAsync(["import", tarball, tag], TimeSpan.FromSeconds(300), ct);
        Assert.That(import.ExitCode, Is.Zero, import.ToString());
    }

    private static bool IsElf(string file)
    {
        Span<byte> magic = stackalloc byte[4];
        using var stream = File.OpenRead(file);
        return stream.Read(magic) == 4 && magic.SequenceEqual("\u007FELF"u8);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_daemon.HasExited)
        {
            var containers = await RunAsync(["ps", "-aq"], TimeSpan.FromSeconds(30), CancellationToken.None);
            var ids = containers.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (ids.Length > 0)
            {
                await RunAsync(["rm", "-f", .. ids], TimeSpan.FromSeconds(60), CancellationToken.None);
            }

            // SIGTERM: dockerd stops its containerd and removes its socket and pid file.
            await ExternalTool.RunAsync("kill", "procps", ["-TERM", _daemon.Pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), CancellationToken.None);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _daemon.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                await TestContext.Error.WriteLineAsync("dockerd did not stop within 30 s of SIGTERM; killed");
            }
        }

        _daemon.Dispose();

        // Whatever of ours still runs (a containerd or a shim dockerd did not stop) names our directory.
        foreach (var pid in ProcessesNaming(Directory))
        {
            await ExternalTool.RunAsync("kill", "procps", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), CancellationToken.None);
        }

        foreach (var mount in Leftovers().Where(l => l.StartsWith("mount ", StringComparison.Ordinal)).Select(l => l["mount ".Length..]).OrderByDescending(m => m.Length))
        {
            await ExternalTool.RunAsync("umount", "mount", ["-l", mount], TimeSpan.FromSeconds(10), CancellationToken.None);
        }

        foreach (var cgroup in _createdCgroups)
        {
            RemoveCgroup(cgroup);
        }

        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    /// <summary>What of this dockerd is still on the machine (processes, mounts, cgroups, its directory); empty when all is gone.</summary>
    public IReadOnlyList<string> Leftovers()
    {
        var left = ProcessesNaming(Directory).Select(p => $"process {p}").ToList();
        left.AddRange(File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
            .Where(m => m.StartsWith(Directory + "/", StringComparison.Ordinal)).Select(m => "mount " + m));
        left.AddRange(_createdCgroups.Where(System.IO.Directory.Exists).Select(c => "cgroup " + c));
        return left;
    }

    // The cgroup directories docker run --cgroup-parent will make in every v1 hierarchy: the first missing component
    // of the parent path and below (only what did not exist before, so only that is removed).
    private static List<string> CgroupsToCreate(string parent)
    {
        var created = new List<string>();
        foreach (var hierarchy in System.IO.Directory.GetDirectories("/sys/fs/cgroup"))
        {
            if (!File.Exists(Path.Combine(hierarchy, "cgroup.procs")))
            {
                continue; // not a mounted hierarchy (a symlink such as cpu,cpuacct)
            }

            var path = hierarchy;
            foreach (var part in parent.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                path = Path.Combine(path, part);
                if (!System.IO.Directory.Exists(path))
                {
                    created.Add(path);
                    break;
                }
            }
        }

        return created;
    }

    // rmdir of a cgroup and the groups below it, deepest first (a cgroup's files are not real files).
    private static void RemoveCgroup(string path)
    {
        if (!System.IO.Directory.Exists(path))
        {
            return;
        }

        foreach (var child in System.IO.Directory.GetDirectories(path))
        {
            RemoveCgroup(child);
        }

        for (var attempt = 0; attempt < 50; attempt++)
        {
            try
            {
                System.IO.Directory.Delete(path);
                return;
            }
            catch (IOException)
            {
                Thread.Sleep(100); // EBUSY while the last process of the group is exiting
            }
        }
    }

    private static List<int> ProcessesNaming(string text)
    {
        var pids = new List<int>();
        foreach (var dir in System.IO.Directory.GetDirectories("/proc").Where(d => char.IsAsciiDigit(Path.GetFileName(d)[0])))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Contains(text, StringComparison.Ordinal))
                {
                    pids.Add(int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture));
                }
            }
            catch (IOException)
            {
                // Exited while we looked.
            }
        }

        return pids;
    }
}
