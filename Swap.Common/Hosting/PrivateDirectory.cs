namespace Swap.Common.Hosting;

/// <summary>
/// A directory only this process's user can enter, for a socket that must be the kernel's alone: whoever can reach
/// the NBD server's socket reads and writes every swapped page. Binding inside such a directory leaves no window in
/// which another user could connect before the socket's own mode is set.
/// </summary>
public static class PrivateDirectory
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const uint TypeMask = 0xF000;
    private const uint TypeDirectory = 0x4000;
    private const uint PermissionMask = 0x1FF; // rwxrwxrwx
    private const uint GroupOrOtherAny = 0x3F; // ---rwxrwx
    private const uint GroupOrOtherWrite = 0x12; // ----w--w-
    private const int Enoent = 2;

    /// <summary>
    /// Makes sure <paramref name="directory"/> exists, belongs to this process's effective user and lets no one else
    /// in. A missing directory is created with mode 0700. An existing one owned by another user, writable by group or
    /// others, or not a directory is refused (<see cref="IOException"/>, the message starting with
    /// <paramref name="key"/> and saying how to fix it): someone else may have put things in it. One of ours that
    /// group or others may only enter or list (mkdir under umask 022, systemd's RuntimeDirectory= default 0755) is
    /// tightened to 0700; its previous mode is returned so the caller can log it, null when nothing was changed.
    /// </summary>
    public static UnixFileMode? Ensure(string directory, string key)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException($"{key}: a private socket directory needs Unix file modes");
        }

        var error = PrivateDirectoryNative.Stat(directory, out var uid, out var mode);
        if (error == Enoent)
        {
            Directory.CreateDirectory(directory, OwnerOnly);
            error = PrivateDirectoryNative.Stat(directory, out uid, out mode);
        }

        if (error != 0)
        {
            throw new IOException($"{key}: cannot inspect directory {directory} (errno {error})");
        }

        var me = PrivateDirectoryNative.EffectiveUserId();
        if ((mode & TypeMask) != TypeDirectory)
        {
            throw new IOException($"{key}: {directory} is not a directory (a symbolic link or a file); " +
                "the socket must be in a directory of the server's own: remove it, or choose another path");
        }

        if (uid != me)
        {
            throw new IOException($"{key}: directory {directory} belongs to uid {uid}, not to this server's user (uid {me}), " +
                "and its owner could replace the socket; remove it (the server creates it, mode 0700) or choose a socket path in a directory of the server's user");
        }

        var permissions = mode & PermissionMask;
        if ((permissions & GroupOrOtherWrite) != 0)
        {
            throw new IOException($"{key}: directory {directory} is mode {Convert.ToString(permissions, 8)}: other users can write in it; " +
                $"chmod 700 {directory} (or remove it: the server creates it, mode 0700), or choose a socket path in a directory only the server's user can enter");
        }

        if ((permissions & GroupOrOtherAny) == 0)
        {
            return null;
        }

        File.SetUnixFileMode(directory, OwnerOnly);
        return (UnixFileMode)permissions;
    }
}
