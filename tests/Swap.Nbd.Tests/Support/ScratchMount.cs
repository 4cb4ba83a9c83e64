using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A file system mounted by a test for as long as it runs (as root): ramfs, which refuses O_DIRECT, or a loop-mounted
/// ext4 image for direct I/O where the temp directory cannot do it. Unmounted and removed on dispose.
/// </summary>
internal sealed class ScratchMount : IAsyncDisposable
{
    private readonly string _root;

    private ScratchMount(string root, string path)
    {
        _root = root;
        Path = path;
    }

    public string Path { get; }

    public static async Task<ScratchMount> RamfsAsync(CancellationToken ct)
    {
        var root = Directory.CreateTempSubdirectory("swapnbd-ramfs-").FullName;
        var path = System.IO.Path.Combine(root, "mnt");
        Directory.CreateDirectory(path);
        await RunAsync("mount", "mount", ["-t", "ramfs", "ramfs", path], ct);
        return new ScratchMount(root, path);
    }

    /// <summary>An ext4 file system of <paramref name="size"/> bytes in an image in the temp directory, loop-mounted.</summary>
    public static async Task<ScratchMount> Ext4Async(long size, CancellationToken ct)
    {
        var root = Directory.CreateTempSubdirectory("swapnbd-ext4-").FullName;
        var image = System.IO.Path.Combine(root, "fs.img");
        var path = System.IO.Path.Combine(root, "mnt");
        Directory.CreateDirectory(path);
        using (var handle = File.OpenHandle(image, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(handle, size);
        }

        await RunAsync("mkfs.ext4", "e2fsprogs", ["-q", "-F", image], ct);
        await RunAsync("mount", "mount", ["-o", "loop", image, path], ct);
        return new ScratchMount(root, path);
    }

    public async ValueTask DisposeAsync()
    {
        await RunAsync("umount", "mount", [Path], CancellationToken.None);
        Directory.Delete(_root, recursive: true);
    }

    private static async Task RunAsync(string tool, string package, string[] arguments, CancellationToken ct)
    {
        var result = await ExternalTool.RunAsync(tool, package, arguments, TimeSpan.FromSeconds(60), ct);
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
    }
}
