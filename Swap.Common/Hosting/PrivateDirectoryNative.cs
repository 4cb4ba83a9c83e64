using System.Runtime.InteropServices;

namespace Swap.Common.Hosting;

/// <summary>
/// The libc calls <see cref="PrivateDirectory"/> makes: statx (owner and mode of a path; .NET has no API for the
/// owner, and statx's layout, unlike stat's, is the same on every architecture) and geteuid.
/// </summary>
internal static partial class PrivateDirectoryNative
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const uint StatxMode = 0x2;
    private const uint StatxUid = 0x8;
    private const int StatxSize = 256;
    private const int UidOffset = 20;
    private const int ModeOffset = 28;

    /// <summary>Owner and st_mode (type and permission bits) of <paramref name="path"/> itself (a symbolic link is not
    /// followed); 0 or the errno of the failure.</summary>
    public static unsafe int Stat(string path, out uint uid, out uint mode)
    {
        var buffer = stackalloc byte[StatxSize];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType | StatxMode | StatxUid, buffer) != 0)
        {
            uid = 0;
            mode = 0;
            return Marshal.GetLastPInvokeError();
        }

        // Native byte order, as the kernel wrote them.
        uid = *(uint*)(buffer + UidOffset);
        mode = *(ushort*)(buffer + ModeOffset);
        return 0;
    }

    public static uint EffectiveUserId() => geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
