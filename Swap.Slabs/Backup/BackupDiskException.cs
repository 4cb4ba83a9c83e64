namespace Swap.Slabs.Backup;

/// <summary>The backup disk cannot be used as configured; the message names the path and what to change.</summary>
public sealed class BackupDiskException : Exception
{
    public BackupDiskException() { }
    public BackupDiskException(string message) : base(message) { }
    public BackupDiskException(string message, Exception inner) : base(message, inner) { }
}
