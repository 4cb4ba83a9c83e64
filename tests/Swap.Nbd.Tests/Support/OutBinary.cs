using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// The published executables in out/, checked once per run to be newer than every source file they are built from,
/// so a process test never passes or fails against code that is not the code in the tree.
/// </summary>
internal static class OutBinary
{
    private static readonly Lazy<(DateTime Time, string File)> NewestSource = new(FindNewestSource);

    /// <summary>The path of out/<paramref name="name"/>; fails the test if it is missing or older than the sources.</summary>
    public static string Path(string name)
    {
        var path = Repo.Path("out", name);
        Check(path);
        return path;
    }

    /// <summary>Fails the test if <paramref name="path"/> is in out/ and missing or stale; other paths pass.</summary>
    public static void Check(string path)
    {
        if (!System.IO.Path.GetFullPath(path).StartsWith(Repo.Path("out") + "/", StringComparison.Ordinal))
        {
            return;
        }

        Assert.That(File.Exists(path), Is.True, $"{path} does not exist: run scripts/build.sh first (scripts/test.sh does)");
        var (time, file) = NewestSource.Value;
        var built = File.GetLastWriteTimeUtc(path);
        Assert.That(built, Is.GreaterThanOrEqualTo(time),
            $"{path} (built {built:u}) is older than {file} (changed {time:u}): run scripts/build.sh (scripts/test.sh does)");
    }

    private static (DateTime, string) FindNewestSource()
    {
        // Every project an executable is built from lives at the root (tests/ and out/ are not among them), plus the
        // root build files every project imports.
        var newest = (Time: DateTime.MinValue, File: "");
        var root = new DirectoryInfo(Repo.Root);
        var files = root.EnumerateFiles("Directory.*.props")
            .Concat(root.EnumerateDirectories("Swap.*").SelectMany(d => d.EnumerateFiles("*", SearchOption.AllDirectories)))
            .Where(f => f.Extension is ".cs" or ".csproj" or ".props" or ".json" && !IsBuildOutput(f.FullName));
        foreach (var file in files)
        {
            if (file.LastWriteTimeUtc > newest.Time)
            {
                newest = (file.LastWriteTimeUtc, file.FullName);
            }
        }

        return newest;
    }

    private static bool IsBuildOutput(string path) =>
        path.Contains("/bin/", StringComparison.Ordinal) || path.Contains("/obj/", StringComparison.Ordinal);
}
