using System.Diagnostics;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>What a child process did: exit code and everything it printed.</summary>
public sealed record ToolResult(string Tool, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"{Tool} exited {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs a real NBD client (nbdinfo, nbdcopy, fio, qemu-img, ...) as a child process with a timeout.
/// A tool that is not installed fails the test and names the Debian package to install: interop is never skipped.
/// </summary>
public static class ExternalTool
{
    public static async Task<ToolResult> RunAsync(string tool, string package, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken ct)
    {
        var path = Find(tool);
        if (path is null)
        {
            Assert.Fail($"{tool} is not installed; it is part of the interop test set: apt-get install {package}");
        }

        var start = new ProcessStartInfo(path!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // Keep the tools from reading debugging or proxy settings of whoever runs the tests.
        start.Environment.Remove("LIBNBD_DEBUG");
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {tool}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            Assert.Fail($"{tool} {string.Join(' ', start.ArgumentList)} did not finish within {timeout}\n{await stdout}\n{await stderr}");
        }

        return new ToolResult(tool, process.ExitCode, await stdout, await stderr);
    }

    private static string? Find(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
