using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Deploy;

/// <summary>The manifests of deploy/kubernetes read as Kubernetes reads them: YAML 1.1 (python3-yaml) into JSON.</summary>
internal static class KubernetesManifest
{
    /// <summary>Every YAML document of <paramref name="file"/>, as JSON (python3-yaml's safe loader).</summary>
    public static async Task<JsonElement> ParseAsync(string file, CancellationToken ct)
    {
        var result = await ExternalTool.RunAsync("/usr/bin/python3", "python3-yaml",
            ["-c", "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)", file], TimeSpan.FromSeconds(30), ct);
        Assert.That(result.ExitCode, Is.Zero, $"{file} is not valid YAML (or python3-yaml is missing: apt-get install python3-yaml)\n{result}");
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    /// <summary>The donor DaemonSet's pod spec (deploy/kubernetes/donor-daemonset.yaml).</summary>
    public static async Task<JsonElement> DonorPodAsync(CancellationToken ct) =>
        (await ParseAsync(Repo.Path("deploy", "kubernetes", "donor-daemonset.yaml"), ct))[0].GetProperty("spec").GetProperty("template").GetProperty("spec");

    /// <summary>A memory quantity as the examples write it: a number with an optional binary suffix (Ki, Mi, Gi, Ti).</summary>
    public static long Quantity(string text)
    {
        var suffixes = new Dictionary<string, int> { ["Ki"] = 10, ["Mi"] = 20, ["Gi"] = 30, ["Ti"] = 40 };
        foreach (var (suffix, shift) in suffixes)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal))
            {
                return long.Parse(text[..^suffix.Length], CultureInfo.InvariantCulture) << shift;
            }
        }

        return long.Parse(text, CultureInfo.InvariantCulture);
    }
}
