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

    /// <summary>
    /// Writes that do not overlap, each as <see cref="Write"/> would; <paramref name="errors"/>[i] gets write i's
    /// failure or null. A store that can keep several writes in flight does (direct I/O on a file: one submission,
    /// one wait); by default one after another.
    /// </summary>
    void WriteMany(ReadOnlySpan<BlockDevices.BlockWrite> writes, Span<BlockDevices.BlockDeviceException?> errors) =>
        WriteOneByOne(this, writes, errors);

    /// <summary>What <see cref="WriteMany"/> does for a store that keeps one write in flight: each through <see cref="Write"/>.</summary>
    static void WriteOneByOne(IBackupStore store, ReadOnlySpan<BlockDevices.BlockWrite> writes, Span<BlockDevices.BlockDeviceException?> errors)
    {
        for (var i = 0; i < writes.Length; i++)
        {
            try
            {
                store.Write(writes[i].Offset, writes[i].Data.Span);
                errors[i] = null;
            }
            catch (BlockDevices.BlockDeviceException ex)
            {
                errors[i] = ex;
            }
        }
    }

    /// <summary>
    /// Writes as <see cref="Write"/> does and runs <paramref name="work"/> once, while the disk has the write in flight
    /// where the store can (direct I/O on a file: native AIO), else before the write. <paramref name="work"/> runs
    /// also when the write then fails.
    /// </summary>
    void WriteWhile<TWork>(long offset, ReadOnlySpan<byte> source, ref TWork work)
        where TWork : IWhileWriting, allows ref struct
    {
        work.Run();
        Write(offset, source);
    }

    /// <summary>Makes every completed write durable (fdatasync).</summary>
    void Flush();

    /// <summary>Frees the range's storage; it reads back as zeroes.</summary>
    void Discard(long offset, long length);
}
