namespace Swap.Slabs.Backup;

/// <summary>How the backup disk is read and written: around the page cache (O_DIRECT) or through it.</summary>
public enum BackupIoMode
{
    /// <summary>Direct I/O where the file system or device allows it; otherwise buffered, with a warning at open.</summary>
    Auto,

    /// <summary>Direct I/O (O_DIRECT) only: a backup disk that refuses it is an error at open.</summary>
    Direct,

    /// <summary>Through the page cache (pwrite, pread), as before direct I/O existed.</summary>
    Buffered,
}
