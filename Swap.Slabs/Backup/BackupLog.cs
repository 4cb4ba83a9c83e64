using Microsoft.Extensions.Logging;

namespace Swap.Slabs.Backup;

/// <summary>Log messages of the backup disk (event ids 380-389).</summary>
internal static partial class BackupLog
{
    [LoggerMessage(380, LogLevel.Information, "Backup disk {Path}: direct I/O (O_DIRECT, {Alignment}-byte blocks, {BufferBytes} bytes of bounce buffers): pages bypass the page cache")]
    public static partial void Direct(ILogger logger, string path, int alignment, long bufferBytes);

    [LoggerMessage(381, LogLevel.Warning, "Backup disk {Path}: no direct I/O: {Reason}; writing through the page cache instead, which takes RAM from the machine that swaps (use a partition or an ext4/xfs file for direct I/O, or --backup-io buffered to choose this)")]
    public static partial void DirectRefused(ILogger logger, string path, string reason);

    [LoggerMessage(382, LogLevel.Information, "Backup disk {Path}: buffered I/O through the page cache (--backup-io buffered)")]
    public static partial void Buffered(ILogger logger, string path);

    [LoggerMessage(383, LogLevel.Warning, "Backup disk {Path}: no native AIO ({Reason}); batches of writes go to the disk one by one (raise fs.aio-max-nr if it is the limit)")]
    public static partial void BatchesRefused(ILogger logger, string path, string reason);
}
