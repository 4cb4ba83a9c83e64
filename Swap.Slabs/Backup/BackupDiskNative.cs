using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Swap.Slabs.Backup;

/// <summary>
/// The libc calls the backup disk needs that .NET does not expose: fdatasync, fallocate, statx, BLKGETSIZE64, and for
/// direct I/O fcntl(O_DIRECT), statx(STATX_DIOALIGN), BLKSSZGET.
/// </summary>
internal static partial class BackupDiskNative
{
    public const int FallocFlKeepSize = 0x01;
    public const int FallocFlPunchHole = 0x02;
    public const int ErrnoNotSupported = 95; // EOPNOTSUPP (== ENOTSUP on Linux)

    public const int ErrnoInvalid = 22; // EINVAL: what open/fcntl answer a file system without O_DIRECT

    private const int AtEmptyPath = 0x1000;
    private const uint StatxDioAlign = 0x2000;
    private const int StatxDioMemAlignOffset = 0x98;
    private const int StatxDioOffsetAlignOffset = 0x9c;
    private const ulong BlkSszGet = 0x1268;
    private const int FcntlGetFlags = 3;
    private const int FcntlSetFlags = 4;
    private const uint StatxBasicStats = 0x7ff;
    private const ulong BlkGetSize64 = 0x80081272;
    private const int StatxBufferSize = 256;
    private const int StatxModeOffset = 28;
    private const int StatxSizeOffset = 40;
    private const int StatxBlocksOffset = 48;
    private const int StatxInodeOffset = 32;
    private const int StatxRdevMajorOffset = 128;
    private const int StatxDevMajorOffset = 136;

    public const int FileTypeMask = 0xF000;
    public const int FileTypeRegular = 0x8000;
    public const int FileTypeBlockDevice = 0x6000;
    public const int FileTypeDirectory = 0x4000;

    /// <summary>What fstat says about an open file; <see cref="Identity"/> tells files (and devices) apart on this host.</summary>
    public readonly record struct FileStatus(int Mode, long Size, long Blocks, ulong Inode = 0, ulong Device = 0, ulong SpecialDevice = 0)
    {
        /// <summary>(st_dev, st_ino) for a file, st_rdev for a block device: the same while the file or device exists.</summary>
        public (ulong, ulong) Identity => (Mode & FileTypeMask) == FileTypeBlockDevice ? (SpecialDevice, 0) : (Device, Inode);

        public int FileType => Mode & FileTypeMask;
    }

    /// <summary>statx's (u32 major, u32 minor) as one number.</summary>
    private static ulong DeviceNumber(ReadOnlySpan<byte> majorMinor) =>
        ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(majorMinor) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(majorMinor[4..]);

    /// <summary>statx has one layout on every architecture, unlike struct stat, so no per-arch structs are needed.</summary>
    public static unsafe int FileStatusOf(SafeHandle handle, out FileStatus status)
    {
        var buffer = stackalloc byte[StatxBufferSize];
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var empty = stackalloc byte[1];
            empty[0] = 0;
            if (statx((int)handle.DangerousGetHandle(), empty, AtEmptyPath, StatxBasicStats, buffer) != 0)
            {
                status = default;
                return Marshal.GetLastPInvokeError();
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        var span = new ReadOnlySpan<byte>(buffer, StatxBufferSize);
        status = new FileStatus(
            BinaryPrimitives.ReadUInt16LittleEndian(span[StatxModeOffset..]),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(span[StatxSizeOffset..]),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(span[StatxBlocksOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[StatxInodeOffset..]),
            DeviceNumber(span[StatxDevMajorOffset..]),
            DeviceNumber(span[StatxRdevMajorOffset..]));
        return 0;
    }

    /// <summary>Size of a block device in bytes (st_size is 0 for block devices).</summary>
    public static unsafe int BlockDeviceSize(SafeHandle handle, out long size)
    {
        ulong bytes = 0;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (ioctl((int)handle.DangerousGetHandle(), BlkGetSize64, &bytes) != 0)
            {
                size = 0;
                return Marshal.GetLastPInvokeError();
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        size = (long)bytes;
        return 0;
    }

    /// <summary>O_DIRECT's value differs between architectures (x86-64 0x4000; arm64 and arm 0x10000).</summary>
    private static int DirectFlag => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;

    /// <summary>Sets O_DIRECT on an open file (fcntl F_SETFL); a file system that cannot do direct I/O answers EINVAL.</summary>
    public static int EnableDirectIo(SafeHandle handle)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var fd = (int)handle.DangerousGetHandle();
            var flags = fcntl(fd, FcntlGetFlags, 0);
            if (flags < 0)
            {
                return Marshal.GetLastPInvokeError();
            }

            return fcntl(fd, FcntlSetFlags, flags | DirectFlag) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// The alignment direct I/O needs of file offsets and lengths (<paramref name="offsetAlign"/>) and of memory
    /// (<paramref name="memoryAlign"/>), from statx(STATX_DIOALIGN) (Linux 6.1+); 0 for each when the kernel or file
    /// system does not say. For a block device without it, both are its logical block size (BLKSSZGET).
    /// </summary>
    public static unsafe int DirectIoAlignment(SafeHandle handle, bool blockDevice, out int offsetAlign, out int memoryAlign)
    {
        offsetAlign = 0;
        memoryAlign = 0;
        var buffer = stackalloc byte[StatxBufferSize];
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var fd = (int)handle.DangerousGetHandle();
            var empty = stackalloc byte[1];
            empty[0] = 0;
            if (statx(fd, empty, AtEmptyPath, StatxDioAlign, buffer) != 0)
            {
                return Marshal.GetLastPInvokeError();
            }

            var span = new ReadOnlySpan<byte>(buffer, StatxBufferSize);
            if ((BinaryPrimitives.ReadUInt32LittleEndian(span) & StatxDioAlign) != 0)
            {
                memoryAlign = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[StatxDioMemAlignOffset..]);
                offsetAlign = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[StatxDioOffsetAlignOffset..]);
            }

            if (offsetAlign == 0 && blockDevice)
            {
                int sectorSize = 0;
                if (ioctl(fd, BlkSszGet, &sectorSize) != 0)
                {
                    return Marshal.GetLastPInvokeError();
                }

                offsetAlign = sectorSize;
                memoryAlign = sectorSize;
            }

            return 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public static int DataSync(SafeHandle handle)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return fdatasync((int)handle.DangerousGetHandle()) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public static int Allocate(SafeHandle handle, int mode, long offset, long length)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return fallocate((int)handle.DangerousGetHandle(), mode, offset, length) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, ulong request, int* result);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(int fd, int mode, long offset, long length);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, ulong request, ulong* result);
}
