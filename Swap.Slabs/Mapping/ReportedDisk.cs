using Microsoft.Extensions.Logging;
using Swap.BlockDevices;
using Swap.Common.Logging;
using Swap.Slabs.Backup;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The backup disk as the slab layer uses it: every failure is counted and logged (at most
/// <see cref="LogBurst"/> lines every <see cref="LogWindow"/>: a failing disk under swap sees the same page retried
/// again and again), then travels on to the caller (an NBD EIO, or ENOSPC for a full disk), so disk errors are
/// reported and never swallowed. A backup store itself, so the layers that only read (hedged reads) take it as one.
/// </summary>
internal sealed class ReportedDisk(IBackupStore disk, SlabMetrics metrics, ILogger logger, TimeProvider time) : IBackupStore
{
    public const int LogBurst = 10;

    public static readonly TimeSpan LogWindow = TimeSpan.FromSeconds(10);

    private readonly LogThrottle _throttle = new(LogBurst, LogWindow, time);

    public long Size => disk.Size;

    public void Read(long offset, Span<byte> destination)
    {
        try
        {
            var started = metrics.DiskStart();
            disk.Read(offset, destination);
            metrics.DiskRead(started);
        }
        catch (BlockDeviceException ex)
        {
            metrics.DiskError("read");
            Report(ex);
            throw;
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        try
        {
            var started = metrics.DiskStart();
            disk.Write(offset, source);
            metrics.DiskWrite(started);
        }
        catch (BlockDeviceException ex)
        {
            metrics.DiskError("write");
            Report(ex);
            throw;
        }
    }

    public void WriteMany(ReadOnlySpan<BlockWrite> writes, Span<BlockDeviceException?> errors)
    {
        var started = metrics.DiskStart();
        disk.WriteMany(writes, errors);
        for (var i = 0; i < writes.Length; i++)
        {
            if (errors[i] is { } ex)
            {
                metrics.DiskError("write");
                Report(ex);
            }
            else
            {
                metrics.DiskWrite(started);
            }
        }
    }

    public void WriteWhile<TWork>(long offset, ReadOnlySpan<byte> source, ref TWork work)
        where TWork : IWhileWriting, allows ref struct
    {
        try
        {
            var started = metrics.DiskStart();
            disk.WriteWhile(offset, source, ref work);
            metrics.DiskWrite(started);
        }
        catch (BlockDeviceException ex)
        {
            metrics.DiskError("write");
            Report(ex);
            throw;
        }
    }

    public void Flush()
    {
        try
        {
            disk.Flush();
        }
        catch (BlockDeviceException ex)
        {
            metrics.DiskError("flush");
            Report(ex);
            throw;
        }
    }

    public void Discard(long offset, long length)
    {
        try
        {
            disk.Discard(offset, length);
        }
        catch (BlockDeviceException ex)
        {
            metrics.DiskError("discard");
            Report(ex);
            throw;
        }
    }

    public void Dispose() => disk.Dispose();

    private void Report(BlockDeviceException ex)
    {
        if (!_throttle.TryEnter(out var suppressed))
        {
            return;
        }

        if (suppressed > 0)
        {
            SlabLog.DiskErrorsSuppressed(logger, suppressed, LogBurst, LogWindow.TotalSeconds);
        }

        SlabLog.DiskError(logger, ex.Message);
    }
}
