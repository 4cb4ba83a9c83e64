using System.Diagnostics;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>The metrics tests' programs: Prometheus and promtool (Debian's prometheus package, scripts/setup.sh installs it).</summary>
internal static class Tools
{
    /// <summary>The path of <paramref name="tool"/> on PATH; fails the test naming the package when it is missing.</summary>
    public static string Require(string tool, string package)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, tool);
            if (File.Exists(path))
            {
                return path;
            }
        }

        Assert.Fail($"{tool} is not installed: apt-get install {package} (scripts/setup.sh does)");
        return "";
    }

    /// <summary>`promtool check metrics` over <paramref name="text"/>: its exit code and everything it printed.</summary>
    public static async Task<(int Exit, string Output)> PromtoolCheckAsync(string text, CancellationToken ct)
    {
        var info = new ProcessStartInfo(Require("promtool", "prometheus"))
        {
            ArgumentList = { "check", "metrics" },
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.StandardInput.WriteAsync(text);
        process.StandardInput.Close();
        await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(30), ct);
        return (process.ExitCode, await stdout + await stderr);
    }
}
