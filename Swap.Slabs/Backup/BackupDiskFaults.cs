namespace Swap.Slabs.Backup;

/// <summary>Fault points on a <see cref="BackupDisk"/> that tests switch on at run time so every disk-error path can be exercised.</summary>
public sealed class BackupDiskFaults
{
    /// <summary>Every <see cref="BackupDisk.Read"/> fails with an I/O error.</summary>
    public volatile bool FailReads;

    /// <summary>Every <see cref="BackupDisk.Write"/> and <see cref="BackupDisk.Discard"/> fails with an I/O error.</summary>
    public volatile bool FailWrites;

    /// <summary>Every <see cref="BackupDisk.Flush"/> fails with an I/O error.</summary>
    public volatile bool FailFlush;
}
