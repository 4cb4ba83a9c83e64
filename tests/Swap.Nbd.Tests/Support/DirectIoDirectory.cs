using Swap.Slabs.Backup;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A directory where O_DIRECT works, for one test: a new temp directory, or an ext4 image mounted for the test where
/// the temp directory's file system refuses direct I/O. Removed (and unmounted) on dispose.
/// </summary>
internal sealed class DirectIoDirectory : IAsyncDisposable
{
    private readonly DirectoryInfo _dir;
    private readonly ScratchMount? _ext4;

    private DirectIoDirectory(DirectoryInfo dir, ScratchMount? ext4)
    {
        _dir = dir;
        _ext4 = ext4;
    }

    public string Path => _ext4?.Path ?? _dir.FullName;

    public static async Task<DirectIoDirectory> CreateAsync(string prefix)
    {
        var dir = Directory.CreateTempSubdirectory(prefix);
        try
        {
            using var probe = BackupDisk.Open(System.IO.Path.Combine(dir.FullName, "probe"), 4096, BackupIoMode.Direct);
            return new DirectIoDirectory(dir, null);
        }
        catch (BackupDiskException)
        {
            return new DirectIoDirectory(dir, await ScratchMount.Ext4Async(256L << 20, CancellationToken.None));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_ext4 is not null)
        {
            await _ext4.DisposeAsync();
        }

        _dir.Delete(recursive: true);
    }
}
