namespace Swap.BlockDevices;

/// <summary>A byte-addressable block device that an NBD export serves.</summary>
/// <remarks>
/// Methods report failures by throwing <see cref="BlockDeviceException"/>. Ranges are validated by the caller
/// (offset + length within <see cref="Size"/>, aligned to <see cref="MinimumBlockSize"/>); concurrent calls are allowed.
/// </remarks>
public interface IBlockDevice : IDisposable
{
    long Size { get; }

    BlockDeviceCapabilities Capabilities { get; }

    /// <summary>Smallest offset/length granularity the device accepts (a power of two, at most 64 KiB).</summary>
    int MinimumBlockSize { get; }

    /// <summary>Reads synchronously if the data is at hand without blocking; false means call <see cref="ReadAsync"/>.</summary>
    bool TryRead(long offset, Span<byte> destination);

    ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken);

    /// <summary>Writes synchronously if that can be done without blocking; false means nothing was written, call <see cref="WriteAsync"/>.</summary>
    bool TryWrite(long offset, ReadOnlySpan<byte> source, bool fua);

    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a batch of writes without FUA that do not overlap, synchronously, when the device gains by taking them
    /// together (a disk that works on them at once); <paramref name="errors"/>[i] gets write i's failure or null.
    /// False means nothing was written: write them one by one (<see cref="TryWrite"/>). The data is not used after
    /// this returns.
    /// </summary>
    bool TryWriteBatch(ReadOnlySpan<BlockWrite> writes, Span<BlockDeviceException?> errors) => false;

    /// <summary>True when <see cref="TryWriteBatch"/> gains over one write at a time, so a server should gather the WRITEs it has received into batches.</summary>
    bool TakesWriteBatches => false;

    /// <summary>Makes every completed write durable.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>Discards the range (contents are undefined until rewritten); frees its storage where possible.</summary>
    ValueTask TrimAsync(long offset, long length, bool fua, CancellationToken cancellationToken);

    /// <summary>Makes the range read as zeroes; with <paramref name="noHole"/> storage stays allocated.</summary>
    /// <remarks>With <paramref name="fastOnly"/> the device throws <see cref="BlockDeviceError.NotSupported"/> unless zeroing is cheaper than writing.</remarks>
    ValueTask WriteZeroesAsync(long offset, long length, bool noHole, bool fastOnly, bool fua, CancellationToken cancellationToken);

    /// <summary>Describes allocation from <paramref name="offset"/> as consecutive extents; returns how many were written (at least one).</summary>
    int GetAllocation(long offset, long length, Span<AllocationExtent> extents);
}
