using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Swap.BlockDevices;
using Swap.Common.Units;

namespace Swap.Slabs.Backup;

/// <summary>The disk mirror of every page: a regular file (kept sparse) or a block device, read and written synchronously.</summary>
/// <remarks>
/// Calls are synchronous on purpose: the caller overlaps them with the network round trip to the daemon. With direct
/// I/O (<see cref="BackupIoMode"/>) pages go around the page cache, through <see cref="DirectBlockIo"/>, so swapped
/// pages do not sit in the RAM the swap device exists to free and a swap-out never needs a new page-cache page.
/// Concurrent calls are allowed (pread/pwrite). Ranges outside
/// <see cref="Size"/> are caller bugs and throw <see cref="ArgumentOutOfRangeException"/>; everything the disk
/// itself refuses throws <see cref="BlockDeviceException"/> with <see cref="BlockDeviceError.Io"/>.
/// </remarks>
public sealed class BackupDisk : IBackupStore
{
    // Discard zeroes unaligned edges by writing and punches only whole 4 KiB blocks: block devices refuse
    // fallocate on ranges not aligned to their logical block size, and 4 KiB covers 512-byte and 4K-native disks.
    private const int DiscardAlignment = 4096;
    private const int MaxDirectAlignment = 64 * 1024;
    private static readonly byte[] Zeroes = new byte[64 * 1024];

    // errnos that mean more to an NBD client than EIO (.NET's IOException carries the raw errno as its HResult on Unix).
    private const int NoSpaceErrno = 28;
    private const int ReadOnlyErrno = 30;
    private const int QuotaErrno = 122;

    private readonly SafeFileHandle _handle;
    private DirectBlockIo? _direct;
    private volatile bool _punchUnsupported;

    private BackupDisk(string path, long size, bool isBlockDevice, SafeFileHandle handle, (ulong, ulong) identity)
    {
        Identity = identity;
        Path = path;
        Size = size;
        IsBlockDevice = isBlockDevice;
        _handle = handle;
    }

    /// <summary>True when pages go around the page cache (O_DIRECT); false when through it.</summary>
    public bool IsDirect => _direct is not null;

    /// <summary>True when <see cref="WriteMany"/> keeps its writes in flight together (direct I/O on a file, native AIO).</summary>
    public bool BatchesWrites => _direct?.Batches ?? false;

    /// <summary>With direct I/O, the block size offsets and lengths are aligned to (smaller writes are read-modify-written); else 0.</summary>
    public int DirectAlignment => _direct?.Alignment ?? 0;

    /// <summary>With direct I/O, the bytes of aligned bounce buffers held (pre-allocated, touched); else 0.</summary>
    public long DirectBufferBytes => _direct?.BufferBytes ?? 0;

    public string Path { get; }

    /// <summary>The usable size: the size asked for at open (the file or device may be larger).</summary>
    public long Size { get; }

    public bool IsBlockDevice { get; }

    /// <summary>(st_dev, st_ino) of the file, or (st_rdev, 0) of the device: unchanged across server restarts.</summary>
    public (ulong Device, ulong Inode) Identity { get; }

    /// <summary>Bytes the file really occupies (st_blocks × 512); a block device reports 0.</summary>
    public long AllocatedBytes
    {
        get
        {
            var errno = BackupDiskNative.FileStatusOf(_handle, out var status);
            if (errno != 0)
            {
                throw new BlockDeviceException(BlockDeviceError.Io, $"backup disk {Path}: fstat failed: {BackupDiskNative.Describe(errno)}");
            }

            return status.Blocks * 512;
        }
    }

    /// <summary>Opens (creating if missing) a file or block device of at least <paramref name="size"/> bytes for read/write.</summary>
    /// <remarks>
    /// A smaller regular file is extended with ftruncate and stays sparse; a smaller block device is refused. The file
    /// is locked (flock) so that two servers cannot share one backup disk. With <see cref="BackupIoMode.Auto"/> a file
    /// system that refuses O_DIRECT (ramfs, some FUSE and network file systems) is used buffered, and
    /// <paramref name="logger"/> says so; with <see cref="BackupIoMode.Direct"/> that is an error. Throws
    /// <see cref="BackupDiskException"/>.
    /// </remarks>
    public static BackupDisk Open(string path, long size, BackupIoMode mode = BackupIoMode.Auto, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);

        var existed = ExistsOnDisk(path);
        if (!existed && path.StartsWith("/dev/", StringComparison.Ordinal))
        {
            // A typo in a device name would otherwise create a regular file on devtmpfs, i.e. in memory: the very thing a swap backup must not be.
            throw new BackupDiskException($"backup disk {path}: no such device; check the partition name (a file is not created under /dev, which lives in memory)");
        }

        if (Directory.Exists(path))
        {
            throw new BackupDiskException($"backup disk {path}: is a directory; give a file path inside it (e.g. {System.IO.Path.Combine(path, "swapnbd.backup")}) or a block device");
        }

        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new BackupDiskException($"backup disk {path}: the directory does not exist; create it or choose another path", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new BackupDiskException($"backup disk {path}: cannot open for reading and writing ({ex.Message}); give a writable regular file or block device", ex);
        }
        catch (IOException ex)
        {
            throw new BackupDiskException($"backup disk {path}: cannot open ({ex.Message}); if another swapnbd-server uses this backup disk, give each its own", ex);
        }

        try
        {
            var disk = Prepare(path, size, handle);
            disk.ChooseIo(mode, logger ?? NullLogger.Instance);
            return disk;
        }
        catch
        {
            handle.Dispose();
            if (!existed)
            {
                TryDelete(path);
            }

            throw;
        }
    }

    private static BackupDisk Prepare(string path, long size, SafeFileHandle handle)
    {
        var errno = BackupDiskNative.FileStatusOf(handle, out var status);
        if (errno != 0)
        {
            throw new BackupDiskException($"backup disk {path}: fstat failed: {BackupDiskNative.Describe(errno)}");
        }

        switch (status.FileType)
        {
            case BackupDiskNative.FileTypeBlockDevice:
                errno = BackupDiskNative.BlockDeviceSize(handle, out var deviceSize);
                if (errno != 0)
                {
                    throw new BackupDiskException($"backup disk {path}: cannot read the device size: {BackupDiskNative.Describe(errno)}");
                }

                if (deviceSize < size)
                {
                    throw new BackupDiskException(
                        $"backup disk {path}: {ByteSize.Format(deviceSize)}, need {ByteSize.Format(size)}; give a partition at least the export size or export less");
                }

                return new BackupDisk(path, size, isBlockDevice: true, handle, status.Identity);

            case BackupDiskNative.FileTypeRegular:
                if (status.Size < size)
                {
                    try
                    {
                        RandomAccess.SetLength(handle, size);
                    }
                    catch (IOException ex)
                    {
                        throw new BackupDiskException(
                            $"backup disk {path}: cannot extend from {ByteSize.Format(status.Size)} to {ByteSize.Format(size)} ({ex.Message}); choose a file system that allows a file this large", ex);
                    }
                }

                return new BackupDisk(path, size, isBlockDevice: false, handle, status.Identity);

            case BackupDiskNative.FileTypeDirectory:
                throw new BackupDiskException($"backup disk {path}: is a directory; give a file path inside it (e.g. {System.IO.Path.Combine(path, "swapnbd.backup")}) or a block device");

            default:
                throw new BackupDiskException($"backup disk {path}: is neither a regular file nor a block device; give a file path or a partition");
        }
    }

    public void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        if (_direct is { } direct)
        {
            try
            {
                direct.Read(offset, destination);
                return;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw Failure("read", offset, destination.Length, ex.Message, ex);
            }
        }

        var done = 0;
        try
        {
            while (done < destination.Length)
            {
                var n = RandomAccess.Read(_handle, destination[done..], offset + done);
                if (n == 0)
                {
                    throw Failure("read", offset, destination.Length, $"unexpected end of file after {done} bytes (was the file truncated?)");
                }

                done += n;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Failure("read", offset, destination.Length, ex.Message, ex);
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        CheckRange(offset, source.Length);
        try
        {
            if (_direct is { } direct)
            {
                direct.Write(offset, source);
            }
            else
            {
                // RandomAccess.Write loops over short writes itself.
                RandomAccess.Write(_handle, source, offset);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Failure("write", offset, source.Length, ex.Message, ex);
        }
    }

    /// <summary>
    /// Writes that do not overlap. With direct I/O on a file they are in flight together (native AIO: one submission,
    /// one wait, <see cref="DirectBlockIo.WriteMany"/>), so a batch costs about one device round trip, not one each.
    /// A block device takes them one by one: its synchronous direct I/O of small pieces is the path that never
    /// allocates (see <see cref="ChooseIo"/>), and AIO allocates a request per write.
    /// </summary>
    public void WriteMany(ReadOnlySpan<BlockWrite> writes, Span<BlockDeviceException?> errors)
    {
        foreach (var write in writes)
        {
            CheckRange(write.Offset, write.Data.Length);
        }

        if (_direct is not { Batches: true } direct)
        {
            IBackupStore.WriteOneByOne(this, writes, errors);
            return;
        }

        Span<int> errnos = writes.Length <= DirectBlockIo.MaxBatch ? stackalloc int[DirectBlockIo.MaxBatch] : new int[writes.Length];
        direct.WriteMany(writes, errnos);
        for (var i = 0; i < writes.Length; i++)
        {
            var errno = errnos[i];
            errors[i] = errno == 0 ? null : new BlockDeviceException(ErrorOf(errno),
                $"backup disk {Path}: write of {writes[i].Data.Length} bytes at offset {writes[i].Offset} failed: {BackupDiskNative.Describe(errno)}");
        }
    }

    /// <summary>
    /// A write with <paramref name="work"/> done while the disk has it: with direct I/O on a file the write is
    /// submitted first (native AIO) and the work overlaps the device's round trip; otherwise the work runs first.
    /// </summary>
    public void WriteWhile<TWork>(long offset, ReadOnlySpan<byte> source, ref TWork work)
        where TWork : IWhileWriting, allows ref struct
    {
        CheckRange(offset, source.Length);
        if (_direct is not { Batches: true } direct)
        {
            work.Run();
            Write(offset, source);
            return;
        }

        try
        {
            direct.WriteWhile(offset, source, ref work);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Failure("write", offset, source.Length, ex.Message, ex);
        }
    }

    /// <summary>Makes every completed write durable (fdatasync).</summary>
    public void Flush()
    {
        var errno = BackupDiskNative.DataSync(_handle);
        if (errno != 0)
        {
            // A file system that allocates late (thin provisioning, NFS) reports a full disk here, not at the write.
            throw new BlockDeviceException(ErrorOf(errno), $"backup disk {Path}: fdatasync failed: {BackupDiskNative.Describe(errno)}");
        }
    }

    /// <summary>Makes the range read as zeroes and frees its storage where the file system or device can (punch hole).</summary>
    public void Discard(long offset, long length)
    {
        CheckRange(offset, length);
        var end = offset + length;
        var holeStart = Math.Min(AlignUp(offset), end);
        var holeEnd = Math.Max(end & ~(long)(DiscardAlignment - 1), holeStart);
        WriteZeroes(offset, holeStart - offset);
        if (holeEnd > holeStart)
        {
            PunchHole(holeStart, holeEnd - holeStart);
        }

        WriteZeroes(holeEnd, end - holeEnd);
    }

    public void Dispose()
    {
        _handle.Dispose();
        _direct?.Dispose();
    }

    /// <summary>Sets O_DIRECT on the handle when <paramref name="mode"/> asks for it and the file system allows it.</summary>
    private void ChooseIo(BackupIoMode mode, ILogger logger)
    {
        if (mode == BackupIoMode.Buffered)
        {
            BackupLog.Buffered(logger, Path);
            return;
        }

        var refusal = DirectIoRefusal(out var alignment, out var memoryAlignment);
        if (refusal is not null)
        {
            if (mode == BackupIoMode.Direct)
            {
                throw new BackupDiskException(
                    $"backup disk {Path}: direct I/O (BackupIo=direct) is not possible here: {refusal}; put the backup disk on a partition or on a " +
                    "file system that supports O_DIRECT (ext4, xfs, btrfs), or set --backup-io auto or buffered");
            }

            BackupLog.DirectRefused(logger, Path, refusal);
            return;
        }

        // On a block device the kernel's synchronous direct I/O keeps up to 4 pages' vectors on its stack and
        // kmallocs them for more (__blkdev_direct_IO_simple): 16 KiB pieces never allocate, which under whole-machine
        // swap is the difference between a swap-out written and one waiting in reclaim for itself (docs/operations.md).
        // A file system's direct I/O allocates per call whatever the size, so files keep the large pieces.
        _direct = IsBlockDevice
            ? new DirectBlockIo(_handle, alignment, memoryAlignment, DirectBlockIo.DefaultBuffers, DirectBlockIo.NoAllocationPieceSize)
            : new DirectBlockIo(_handle, alignment, memoryAlignment, batches: true);
        BackupLog.Direct(logger, Path, alignment, _direct.BufferBytes);
        if (_direct.AioRefusal is { } aioRefusal)
        {
            BackupLog.BatchesRefused(logger, Path, aioRefusal);
        }
    }

    /// <summary>Why this disk cannot do direct I/O, or null once O_DIRECT is set on the handle (with the alignments it needs).</summary>
    private string? DirectIoRefusal(out int alignment, out int memoryAlignment)
    {
        var errno = BackupDiskNative.DirectIoAlignment(_handle, IsBlockDevice, out alignment, out memoryAlignment);
        if (errno != 0)
        {
            return "cannot learn its block size: " + BackupDiskNative.Describe(errno);
        }

        // Unknown (statx without STATX_DIOALIGN, before Linux 6.1): 4096 covers 512-byte and 4K-native disks.
        alignment = alignment == 0 ? DiscardAlignment : alignment;
        memoryAlignment = memoryAlignment == 0 ? alignment : memoryAlignment;
        if ((alignment & (alignment - 1)) != 0 || alignment > MaxDirectAlignment || (memoryAlignment & (memoryAlignment - 1)) != 0)
        {
            return $"its direct I/O alignment ({alignment} bytes, memory {memoryAlignment}) is not a power of two up to {MaxDirectAlignment}";
        }

        if (Size % alignment != 0)
        {
            return $"the size {Size} is not a multiple of its block size {alignment}";
        }

        errno = BackupDiskNative.EnableDirectIo(_handle);
        if (errno != 0)
        {
            return errno == BackupDiskNative.ErrnoInvalid
                ? "the file system refuses O_DIRECT (tmpfs before Linux 6.6, ramfs, some FUSE and network file systems do)"
                : "setting O_DIRECT failed: " + BackupDiskNative.Describe(errno);
        }

        return null;
    }

    private void PunchHole(long offset, long length)
    {
        if (!_punchUnsupported)
        {
            var errno = BackupDiskNative.Allocate(_handle, BackupDiskNative.FallocFlPunchHole | BackupDiskNative.FallocFlKeepSize, offset, length);
            if (errno == 0)
            {
                return;
            }

            if (errno != BackupDiskNative.ErrnoNotSupported)
            {
                throw Failure("discard", offset, length, "fallocate(PUNCH_HOLE) failed: " + BackupDiskNative.Describe(errno));
            }

            // The file system or device cannot punch holes; zeroes read back the same, they just keep the space.
            _punchUnsupported = true;
        }

        WriteZeroes(offset, length);
    }

    private void WriteZeroes(long offset, long length)
    {
        try
        {
            while (length > 0)
            {
                var chunk = (int)Math.Min(length, Zeroes.Length);
                if (_direct is { } direct)
                {
                    direct.Write(offset, Zeroes.AsSpan(0, chunk));
                }
                else
                {
                    RandomAccess.Write(_handle, Zeroes.AsSpan(0, chunk), offset);
                }

                offset += chunk;
                length -= chunk;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Failure("discard", offset, length, "writing zeroes failed: " + ex.Message, ex);
        }
    }

    private static long AlignUp(long value) => (value + DiscardAlignment - 1) & ~(long)(DiscardAlignment - 1);

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"backup disk {Path}: range {offset}+{length} is outside 0..{Size}");
        }
    }

    /// <summary>
    /// What an errno from the disk is to the NBD client: a full disk (ENOSPC, or EDQUOT: the backup file's owner is
    /// over quota) is ENOSPC, a read-only file system EPERM, anything else EIO.
    /// </summary>
    internal static BlockDeviceError ErrorOf(int errno) => errno switch
    {
        NoSpaceErrno or QuotaErrno => BlockDeviceError.NoSpace,
        ReadOnlyErrno => BlockDeviceError.ReadOnly,
        _ => BlockDeviceError.Io,
    };

    /// <summary>
    /// A failed read, write or discard, its error by <see cref="ErrorOf"/> (a full disk, such as a sparse file whose file
    /// system filled up, is <see cref="BlockDeviceError.NoSpace"/>, which the NBD client gets as ENOSPC).
    /// </summary>
    private BlockDeviceException Failure(string operation, long offset, long length, string reason, Exception? inner = null) =>
        new(inner is IOException io ? ErrorOf(io.HResult) : BlockDeviceError.Io,
            $"backup disk {Path}: {operation} of {length} bytes at offset {offset} failed: {reason}", inner);

    private static bool ExistsOnDisk(string path) => File.Exists(path) || Directory.Exists(path);

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: the open already failed with a better message than this one would give.
        }
    }
}
