namespace Swap.Nbd.Tests.Support;

/// <summary>Paths in the repository and a way to run its scripts and external tools with a time limit.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    /// <summary>Runs a program to completion (see <see cref="ExternalTool"/>); returns its exit code and output, stdout then stderr.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string program, IEnumerable<string> args, TimeSpan timeout, CancellationToken ct = default)
    {
        var result = await ExternalTool.RunAsync(program, "what scripts/setup.sh installs", args, timeout, ct);
        return (result.ExitCode, result.Stdout + result.Stderr);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "SwapNbd.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (SwapNbd.sln) above " + AppContext.BaseDirectory);
    }
}
