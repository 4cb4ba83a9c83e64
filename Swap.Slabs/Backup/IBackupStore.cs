namespace Swap.Slabs.Backup;

/// <summary>
/// Where every page of a swap device is mirrored: the backup disk. Synchronous on purpose: a write to the page cache
/// takes microseconds, and the caller overlaps it with the daemon round trip it has already started.
/// Failures throw <see cref="BlockDevices.BlockDeviceException"/> with <see cref="BlockDevices.BlockDeviceError.Io"/>.
/// </summary>
public interface IBackupStore : IDisposable
{
    long Size { get; }

    void Read(long offset, Span<byte> destination);

    void Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Makes every completed write durable (fdatasync).</summary>
    void Flush();

    /// <summary>Frees the range's storage; it reads back as zeroes.</summary>
    void Discard(long offset, long length);
}
