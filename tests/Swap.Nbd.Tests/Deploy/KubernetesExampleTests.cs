using System.Runtime.Versioning;
using System.Text.Json;
using NUnit.Framework;
using Swap.Common.Security;
using Swap.Donor.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Deploy;

/// <summary>
/// deploy/kubernetes as far as it can be checked without a cluster (there is none here): every file parses as YAML
/// (Debian's python3-yaml, the YAML 1.1 that Kubernetes' own loader reads), the kinds and names fit together, the
/// DaemonSet's arguments are accepted by the daemon's own settings loader, its memory limit is --max-memory plus
/// overhead, and the Secret's file mode is one the key-file check accepts in the layout the kubelet writes.
/// </summary>
[Category(Tier.Integration)]
[SupportedOSPlatform("linux")]
public sealed class KubernetesExampleTests
{
    // What the limit adds to --max-memory (the daemon's runtime, stacks, buffers; its own RSS was 46 MiB idle, 74 MiB under a small workload here):
    // at least this, and not so much that the scheduler reserves memory nobody uses.
    private const long MinOverhead = 256L << 20;
    private const long MaxOverhead = 1L << 30;

    [Test, CancelAfter(60_000)]
    public async Task Every_file_parses_and_the_kinds_fit_together(CancellationToken ct)
    {
        var documents = new Dictionary<string, JsonElement>();
        foreach (var file in Directory.GetFiles(Repo.Path("deploy", "kubernetes"), "*.yaml"))
        {
            var parsed = await KubernetesManifest.ParseAsync(file, ct);
            Assert.That(parsed.GetArrayLength(), Is.EqualTo(1), $"{file}: one document");
            var document = parsed[0];
            Assert.That(document.TryGetProperty("apiVersion", out _) && document.TryGetProperty("kind", out _), Is.True, $"{file}: apiVersion and kind");
            documents[document.GetProperty("kind").GetString()!] = document;
        }

        Assert.That(documents.Keys, Is.EquivalentTo(new[] { "Namespace", "Service", "DaemonSet" }));
        var ns = documents["Namespace"].GetProperty("metadata").GetProperty("name").GetString();
        var service = documents["Service"];
        var daemonSet = documents["DaemonSet"];
        Assert.That(daemonSet.GetProperty("apiVersion").GetString(), Is.EqualTo("apps/v1"));
        Assert.That(service.GetProperty("metadata").GetProperty("namespace").GetString(), Is.EqualTo(ns));
        Assert.That(daemonSet.GetProperty("metadata").GetProperty("namespace").GetString(), Is.EqualTo(ns));

        // The DaemonSet selects its own pods, and the headless Service selects those pods.
        var template = daemonSet.GetProperty("spec").GetProperty("template");
        var podLabels = Map(template.GetProperty("metadata").GetProperty("labels"));
        Assert.That(Map(daemonSet.GetProperty("spec").GetProperty("selector").GetProperty("matchLabels")), Is.SubsetOf(podLabels));
        Assert.That(service.GetProperty("spec").GetProperty("clusterIP").GetString(), Is.EqualTo("None"), "headless: DNS lists every donor");
        Assert.That(Map(service.GetProperty("spec").GetProperty("selector")), Is.SubsetOf(podLabels));

        // Every Service port points at a named container port with the same number.
        var container = template.GetProperty("spec").GetProperty("containers")[0];
        var containerPorts = container.GetProperty("ports").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!, p => p.GetProperty("containerPort").GetInt32());
        foreach (var port in service.GetProperty("spec").GetProperty("ports").EnumerateArray())
        {
            var target = port.GetProperty("targetPort").GetString()!;
            Assert.That(containerPorts, Does.ContainKey(target));
            Assert.That(port.GetProperty("port").GetInt32(), Is.EqualTo(containerPorts[target]));
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task The_daemon_accepts_the_arguments_and_the_memory_limit_is_max_memory_plus_overhead(CancellationToken ct)
    {
        var pod = await KubernetesManifest.DonorPodAsync(ct);
        var container = pod.GetProperty("containers")[0];
        var args = container.GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToList();

        // The key is in the Secret, not here: the run's key stands in for it.
        var keyIndex = args.IndexOf("--auth-key-file") + 1;
        Assert.That(keyIndex, Is.GreaterThan(0), "the daemon is given the cluster key");
        var keyPath = args[keyIndex];
        var errors = new List<string>();
        var options = DaemonSettings.Load([.. args.Take(keyIndex), TestKeys.File, .. args.Skip(keyIndex + 1)], errors, out _);
        Assert.That(errors, Is.Empty, "swapnbd-daemon accepts the DaemonSet's arguments");

        var resources = container.GetProperty("resources");
        var limit = KubernetesManifest.Quantity(resources.GetProperty("limits").GetProperty("memory").GetString()!);
        var request = KubernetesManifest.Quantity(resources.GetProperty("requests").GetProperty("memory").GetString()!);
        Assert.That(limit - options.MaxMemory, Is.InRange(MinOverhead, MaxOverhead),
            $"limits.memory {limit >> 20} MiB = --max-memory {options.MaxMemory >> 20} MiB + overhead (lent memory is locked in the pod's cgroup)");
        Assert.That(request, Is.EqualTo(limit), "requests = limits: the scheduler counts the lent memory");

        // The ports the daemon listens on are the ones the pod declares.
        var ports = container.GetProperty("ports").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!, p => p.GetProperty("containerPort").GetInt32());
        Assert.That(options.Listen, Is.EqualTo($"0.0.0.0:{ports["slabs"]}"));
        Assert.That(options.MetricsListen, Is.EqualTo($"0.0.0.0:{ports["metrics"]}"));

        // The key file lies in the Secret's volume, mounted read-only with a mode the key-file check accepts.
        var mount = container.GetProperty("volumeMounts").EnumerateArray().Single(m => keyPath.StartsWith(m.GetProperty("mountPath").GetString()! + "/", StringComparison.Ordinal));
        Assert.That(mount.GetProperty("readOnly").GetBoolean(), Is.True);
        var volume = pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == mount.GetProperty("name").GetString());
        var secret = volume.GetProperty("secret");
        Assert.That(secret.GetProperty("secretName").GetString(), Is.EqualTo("swapnbd-cluster-key"));
        var mode = (UnixFileMode)secret.GetProperty("defaultMode").GetInt32();
        Assert.That(mode & ClusterKeyFile.Forbidden, Is.EqualTo((UnixFileMode)0), $"defaultMode 0{Convert.ToString((int)mode, 8)} gives group and others nothing");
        Assert.That(pod.TryGetProperty("securityContext", out var podSecurity) && podSecurity.TryGetProperty("fsGroup", out _), Is.False,
            "no fsGroup: the kubelet would make the key group-readable");
        Assert.That(KubeletKeyLoads(Path.GetFileName(keyPath), mode), Is.Null, "the key-file check accepts the Secret as the kubelet writes it");
        Assert.That(KubeletKeyLoads(Path.GetFileName(keyPath), mode | UnixFileMode.GroupRead), Does.Contain("chmod 600"),
            "and refuses it group-readable (what an fsGroup would do), naming the fix");

        var capabilities = container.GetProperty("securityContext").GetProperty("capabilities");
        Assert.That(capabilities.GetProperty("add").EnumerateArray().Select(c => c.GetString()), Is.EqualTo(new[] { "IPC_LOCK" }), "locking lent memory");
        Assert.That(capabilities.GetProperty("drop").EnumerateArray().Select(c => c.GetString()), Is.EqualTo(new[] { "ALL" }));
    }

    /// <summary>What the key-file check says (null: accepted) of a Secret volume whose key file has <paramref name="mode"/>.</summary>
    private static string? KubeletKeyLoads(string name, UnixFileMode mode)
    {
        var volume = Directory.CreateTempSubdirectory("swapnbd-secret-volume-").FullName;
        try
        {
            return ClusterKeyFile.Problem(SecretVolume.Create(volume, name, mode).Link);
        }
        finally
        {
            Directory.Delete(volume, recursive: true);
        }
    }

    private static Dictionary<string, string> Map(JsonElement element) =>
        element.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
}
