using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using System.Text.Json;
using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Deploy;

/// <summary>
/// The donor pod of deploy/kubernetes/donor-daemonset.yaml as near as docker gets without a cluster: a dockerd of the
/// test's own builds deploy/kubernetes/Dockerfile over a stand-in for its base image (this machine's .NET runtime
/// and the libraries ldd lists and OpenSSL, imported: no registry is reachable) and runs it with the DaemonSet's arguments, memory limit, capabilities (all dropped
/// but IPC_LOCK), read-only root with a small /tmp, and the cluster key as the kubelet lays out a Secret volume with
/// the DaemonSet's defaultMode, mounted read-only. It must lock its memory, pass its readiness probe (/metrics),
/// serve a server holding the key, and exit 0 on docker stop within the pod's grace period.
/// </summary>
[Category(Tier.Swap)]
[SupportedOSPlatform("linux")]
public sealed class DonorContainerTests
{
    private const string Image = "swapnbd-daemon:test";
    private const string BaseImage = "mcr.microsoft.com/dotnet/runtime:10.0";
    private const string DotnetRoot = "/usr/share/dotnet";

    [Test, CancelAfter(300_000)]
    public async Task The_DaemonSets_container_locks_its_memory_serves_a_key_holder_and_stops_cleanly(CancellationToken ct)
    {
        var pod = await KubernetesManifest.DonorPodAsync(ct);
        var spec = pod.GetProperty("containers")[0];
        var args = spec.GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToList();
        var keyMount = spec.GetProperty("volumeMounts").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "cluster-key").GetProperty("mountPath").GetString()!;
        var keyMode = (UnixFileMode)pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "cluster-key")
            .GetProperty("secret").GetProperty("defaultMode").GetInt32();
        var limit = KubernetesManifest.Quantity(spec.GetProperty("resources").GetProperty("limits").GetProperty("memory").GetString()!);
        var grace = pod.GetProperty("terminationGracePeriodSeconds").GetInt32();
        var security = spec.GetProperty("securityContext");
        Assert.That(security.GetProperty("readOnlyRootFilesystem").GetBoolean(), Is.True);

        // Host networking (the test's dockerd has no bridge): the pod's ports become free loopback ports.
        var port = Loopback.FreePort();
        var metricsPort = Loopback.FreePort();
        args[args.IndexOf("--listen") + 1] = $"127.0.0.1:{port}";
        args[args.IndexOf("--metrics-listen") + 1] = $"127.0.0.1:{metricsPort}";

        var runtime = Path.Combine(DotnetRoot, "shared", "Microsoft.NETCore.App");
        var version = Directory.GetDirectories(runtime).Select(Path.GetFileName).Single(v => v!.StartsWith("10.", StringComparison.Ordinal))!;
        await using var docker = await DockerDaemon.StartAsync(ct);
        // The Dockerfile's base image, which no registry here can give: this machine's .NET runtime where the official
        // image has it (/usr/share/dotnet, found by the apphost without DOTNET_ROOT), tagged with the base's name.
        await docker.ImportAsync(BaseImage,
        [
            (Path.Combine(runtime, version), Path.Combine(runtime, version)),
            (Path.Combine(DotnetRoot, "host"), Path.Combine(DotnetRoot, "host")),
        ], ["/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"], ct);
        var dockerfile = Repo.Path("deploy", "kubernetes", "Dockerfile");
        Assert.That(File.ReadAllText(dockerfile), Does.Contain($"\nFROM {BaseImage}\n"));
        OutBinary.Path("swapnbd-daemon");
        var build = await docker.RunAsync(["build", "-f", dockerfile, "-t", Image, Repo.Path("out")], TimeSpan.FromMinutes(5), ct);
        Assert.That(build.ExitCode, Is.Zero, "docker build of deploy/kubernetes/Dockerfile\n" + build);

        var volume = Path.Combine(docker.Directory, "secret");
        SecretVolume.Create(volume, "cluster.key", keyMode, TestKeys.File);
        var capabilities = security.GetProperty("capabilities");
        var name = "donor-" + Guid.NewGuid().ToString("N")[..8];
        var run = await docker.RunAsync(
        [
            "run", "-d", "--name", name, "--network", "host", "--cgroup-parent", docker.CgroupParent,
            "--memory", limit.ToString(CultureInfo.InvariantCulture), "--memory-swap", limit.ToString(CultureInfo.InvariantCulture),
            .. capabilities.GetProperty("drop").EnumerateArray().SelectMany(c => new[] { "--cap-drop", c.GetString()! }),
            .. capabilities.GetProperty("add").EnumerateArray().SelectMany(c => new[] { "--cap-add", c.GetString()! }),
            "--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/tmp:size=16m",
            "--user", security.GetProperty("runAsUser").GetInt32().ToString(CultureInfo.InvariantCulture),
            "-v", $"{volume}:{keyMount}:ro",
            Image, .. args,
        ], TimeSpan.FromSeconds(60), ct);
        Assert.That(run.ExitCode, Is.Zero, run.ToString());

        // The readiness probe: GET /metrics answers.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string? metrics = null;
        for (var i = 0; i < 300 && metrics is null; i++)
        {
            try
            {
                metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics", ct);
            }
            catch (HttpRequestException)
            {
                var state = await docker.RunAsync(["inspect", "-f", "{{.State.Running}}", name], TimeSpan.FromSeconds(30), ct);
                if (state.Stdout.Trim() != "true")
                {
                    break; // exited (a configuration error): its log says why
                }

                await Task.Delay(100, ct);
            }
        }

        var logs = await docker.RunAsync(["logs", name], TimeSpan.FromSeconds(30), ct);
        Assert.That(metrics, Is.Not.Null, "the readiness probe's /metrics never answered\n" + logs);
        Assert.That(logs.Stdout + logs.Stderr, Does.Contain("Memory locked (mlockall)").And.Not.Contain("MEMORY NOT LOCKED"),
            "with IPC_LOCK and nothing else the daemon locks its memory\n" + logs);

        // A server holding the key is served: HELLO and AUTH, a slab, a page written and read back.
        await using (var client = await DonorTestClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct))
        {
            Assert.That(await client.HelloAsync(7, ct), Is.EqualTo(DaemonStatus.Ok), logs.ToString());
            var slab = await client.AllocOkAsync(1 << 20, ct);
            var page = new byte[4096];
            Random.Shared.NextBytes(page);
            Assert.That(await client.WriteAsync(slab, 4096, page, ct), Is.EqualTo(DaemonStatus.Ok));
            var (status, data) = await client.ReadAsync(slab, 4096, 4096, ct);
            Assert.That((status, data), Is.EqualTo((DaemonStatus.Ok, page)));
        }

        var inspect = await docker.RunAsync(["inspect", name], TimeSpan.FromSeconds(30), ct);
        var hostConfig = JsonDocument.Parse(inspect.Stdout).RootElement[0].GetProperty("HostConfig");
        Assert.That(hostConfig.GetProperty("Memory").GetInt64(), Is.EqualTo(limit), "the pod's memory limit");

        // The kubelet's stop: SIGTERM, then SIGKILL after the grace period.
        var stop = await docker.RunAsync(["stop", "-t", grace.ToString(CultureInfo.InvariantCulture), name], TimeSpan.FromSeconds(grace + 30), ct);
        Assert.That(stop.ExitCode, Is.Zero, stop.ToString());
        var exit = await docker.RunAsync(["inspect", "-f", "{{.State.ExitCode}} {{.State.OOMKilled}}", name], TimeSpan.FromSeconds(30), ct);
        var final = await docker.RunAsync(["logs", name], TimeSpan.FromSeconds(30), ct);
        TestContext.Out.WriteLine(final.Stdout + final.Stderr);
        Assert.That(exit.Stdout.Trim(), Is.EqualTo("0 false"), "exit 0 on SIGTERM, not killed\n" + final);
    }
}
