using Swap.Common.Security;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// The cluster key of this test run: made once (swapnbd-daemon keygen's code, mode 0600) in a temp directory of its
/// own (mode 0700) that the run removes at its end (<see cref="TestRun"/>), and given to every daemon and server the tests start, in-process
/// or as processes. Tests that need a key of another cluster make one with <see cref="NewKeyFile"/>.
/// </summary>
internal static class TestKeys
{
    private static readonly Lazy<string> Directory = new(() =>
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("swapnbd-keys-").FullName;
        if (!OperatingSystem.IsWindows())
        {
            System.IO.File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return directory;
    });

    private static readonly Lazy<string> ClusterFile = new(() => NewKeyFile("cluster.key"));
    private static readonly Lazy<ClusterKey> ClusterKeyValue = new(() => ClusterKeyFile.Load(File));

    /// <summary>The run's key file (pass it as --auth-key-file or <c>DonorOptions.AuthKeyFile</c>).</summary>
    public static string File => ClusterFile.Value;

    /// <summary>The run's key, loaded (for <c>DaemonLinkSettings.AuthKey</c> and raw handshakes).</summary>
    public static ClusterKey Cluster => ClusterKeyValue.Value;

    /// <summary>A new key file (another cluster's key) named <paramref name="name"/> in the run's key directory.</summary>
    public static string NewKeyFile(string name)
    {
        var path = Path.Combine(Directory.Value, name);
        ClusterKeyFile.Create(path, force: true);
        return path;
    }

    /// <summary>A scratch path in the run's key directory, for tests that write bad key files.</summary>
    public static string ScratchPath(string name) => Path.Combine(Directory.Value, name);

    /// <summary>Removes the key directory, if the run made one.</summary>
    public static void Remove()
    {
        if (Directory.IsValueCreated && System.IO.Directory.Exists(Directory.Value))
        {
            System.IO.Directory.Delete(Directory.Value, recursive: true);
        }
    }
}
