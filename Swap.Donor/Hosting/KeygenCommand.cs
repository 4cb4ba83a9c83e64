using Swap.Common.Hosting;
using Swap.Common.Security;

namespace Swap.Donor.Hosting;

/// <summary><c>swapnbd-daemon keygen PATH [--force]</c>: writes a new cluster key file, mode 0600.</summary>
public static class KeygenCommand
{
    public const string Usage = """
        usage: swapnbd-daemon keygen PATH [--force]

        Writes a new cluster key (32 random bytes as 64 hex digits and a newline) to PATH, created with mode 0600.
        Copy the same file to every server (--auth-key-file) and every donor (--auth-key-file). An existing PATH is
        left alone unless --force: then the new key replaces it, and every server and donor needs the new file.
        """;

    public static int Run(IReadOnlyList<string> args)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(Usage);
            return ConsoleProgram.ExitOk;
        }

        var force = args.Contains("--force");
        var paths = args.Where(a => a != "--force").ToList();
        if (paths.Count != 1 || paths[0].StartsWith('-') || paths[0].Length == 0)
        {
            Console.Error.WriteLine("swapnbd-daemon: keygen needs one PATH (swapnbd-daemon keygen /etc/swapnbd/cluster.key)");
            return ConsoleProgram.ExitConfig;
        }

        try
        {
            ClusterKeyFile.Create(paths[0], force);
        }
        catch (ClusterKeyException ex)
        {
            Console.Error.WriteLine($"swapnbd-daemon: keygen: {ex.Message}");
            return ConsoleProgram.ExitConfig;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"swapnbd-daemon: keygen: cannot write {paths[0]}: {ex.Message}");
            return ConsoleProgram.ExitStartFailed;
        }

        Console.Out.WriteLine($"swapnbd-daemon: wrote a new cluster key to {paths[0]} (mode 0600); give every server and donor the same file with --auth-key-file");
        return ConsoleProgram.ExitOk;
    }
}
