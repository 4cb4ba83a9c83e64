using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>What a child process did: exit code and everything it printed.</summary>
public sealed record ToolResult(string Tool, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"{Tool} exited {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs a real NBD client (nbdinfo, nbdcopy, fio, qemu-img, ...) or a script to completion with a timeout, through
/// <see cref="RunningExe"/>. A tool that is not installed fails the test and names the Debian package to install:
/// interop is never skipped.
/// </summary>
public static class ExternalTool
{
    public static async Task<ToolResult> RunAsync(string tool, string package, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken ct)
    {
        OutBinary.Check(tool); // an out/ executable that is missing or stale says to run scripts/build.sh
        var path = Find(tool);
        if (path is null)
        {
            Assert.Fail($"{tool} is not installed; it is part of the interop test set: apt-get install {package}");
        }

        // Keep the tools from reading debugging settings of whoever runs the tests.
        using var process = RunningExe.StartProgram(path!, arguments, closeInput: true, removeEnvironment: ["LIBNBD_DEBUG"]);
        var exit = await process.WaitForExitAsync(timeout, ct);
        return new ToolResult(tool, exit, process.Stdout, process.Stderr);
    }

    private static string? Find(string tool)
    {
        if (tool.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(tool) ? tool : null;
        }

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
