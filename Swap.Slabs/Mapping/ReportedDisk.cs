using Microsoft.Extensions.Logging;
using Swap.BlockDevices;
using Swap.Slabs.Backup;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The backup disk as the slab layer uses it: every failure is logged, then travels on to the caller (an NBD EIO),
/// so disk errors are reported and never swallowed. A backup store itself, so the layers that only read (hedged
/// reads) take it as one.
/// </summary>
internal sealed class ReportedDisk(IBackupStore disk, SlabMetrics metrics, ILogger logger) : IBackupStore
{
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
            SlabLog.DiskError(logger, ex.Message);
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
            SlabLog.DiskError(logger, ex.Message);
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
            SlabLog.DiskError(logger, ex.Message);
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
            SlabLog.DiskError(logger, ex.Message);
            throw;
        }
    }

    public void Dispose() => disk.Dispose();
}
