using System.Security.Cryptography;

namespace Swap.Common.Security;

/// <summary>
/// The key file on disk (--auth-key-file): created by <c>swapnbd-daemon keygen</c> with mode 0600 from the first
/// instant (O_CREAT|O_EXCL with the mode), and refused at load, as ssh refuses a private key, when group or others may
/// read or write it, when it is not a regular file, or when it is not 64 hex digits and a newline.
/// </summary>
public static class ClusterKeyFile
{
    /// <summary>The permission bits a key file must not have (group and others, as ssh checks).</summary>
    public const UnixFileMode Forbidden =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Reads the key; throws <see cref="ClusterKeyException"/> saying what is wrong with the file and how to fix it.</summary>
    public static ClusterKey Load(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("a key file's permissions are checked as Unix modes");
        }

        var info = new FileInfo(path);
        if (Directory.Exists(path))
        {
            throw new ClusterKeyException($"{path} is a directory, not a key file; create one with: swapnbd-daemon keygen FILE");
        }

        // A symbolic link is judged by the file it leads to, as ssh judges a key: a Kubernetes Secret volume links
        // KEY -> ..data/KEY -> ..TIMESTAMP/KEY, and the link's own size and mode (0777) say nothing about the key.
        try
        {
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
            {
                info = target;
            }
        }
        catch (IOException ex)
        {
            throw new ClusterKeyException($"{path} is a symbolic link that cannot be followed: {ex.Message}", ex);
        }

        if (!info.Exists)
        {
            throw new ClusterKeyException($"{path} does not exist; create it with: swapnbd-daemon keygen {path} (and copy it to every server and donor)");
        }

        UnixFileMode mode;
        try
        {
            mode = File.GetUnixFileMode(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ClusterKeyException($"{path} cannot be examined: {ex.Message}", ex);
        }

        if ((mode & Forbidden) != 0)
        {
            throw new ClusterKeyException($"{path} may be read or written by group or others (mode {Octal(mode)}); run: chmod 600 {path}");
        }

        // Before opening: a FIFO or a device shows a size of 0 and is refused here rather than blocking an open.
        if (info.Length is < 2 * ClusterKey.Size or > ClusterKeyText.Size)
        {
            throw new ClusterKeyException($"{path} holds {info.Length} bytes, not a regular file of 64 hex digits and a newline; create a key with: swapnbd-daemon keygen FILE");
        }

        Span<byte> text = stackalloc byte[ClusterKeyText.Size + 1];
        Span<byte> key = stackalloc byte[ClusterKey.Size];
        try
        {
            int length;
            try
            {
                using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
                length = RandomAccess.Read(handle, text, 0);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ClusterKeyException($"{path} cannot be read: {ex.Message}", ex);
            }

            if (!ClusterKeyText.TryParse(text[..length], key))
            {
                throw new ClusterKeyException($"{path} is not 64 hex digits and a newline; create a key with: swapnbd-daemon keygen FILE");
            }

            return ClusterKey.FromBytes(key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(text);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Null if <paramref name="path"/> holds a usable key, else what is wrong (for option validation).</summary>
    public static string? Problem(string path)
    {
        try
        {
            Load(path).Erase();
            return null;
        }
        catch (ClusterKeyException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>
    /// Writes a new random key to <paramref name="path"/>, created with mode 0600. An existing file is refused
    /// (<see cref="ClusterKeyException"/>) unless <paramref name="force"/>: then the new key goes to a new 0600 file
    /// beside it that is renamed over it, so the old file's mode never applies to the new key.
    /// </summary>
    public static void Create(string path, bool force)
    {
        Span<byte> key = stackalloc byte[ClusterKey.Size];
        Span<byte> text = stackalloc byte[ClusterKeyText.Size];
        RandomNumberGenerator.Fill(key);
        ClusterKeyText.Format(key, text);
        try
        {
            if (!force)
            {
                if (Path.Exists(path))
                {
                    throw new ClusterKeyException($"{path} exists; keygen does not overwrite a key (--force replaces it: every server and donor then needs the new file)");
                }

                WriteNew(path, text);
                return;
            }

            var temporary = $"{path}.new-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
            WriteNew(temporary, text);
            try
            {
                File.Move(temporary, path, overwrite: true);
            }
            catch
            {
                File.Delete(temporary);
                throw;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(text);
        }
    }

    private static void WriteNew(string path, ReadOnlySpan<byte> text)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("a key file is created with a Unix mode");
        }

        // CreateNew is O_CREAT|O_EXCL; the mode is given to open(2), so the file is never readable by others, not
        // even for a moment (the umask can only take bits away).
        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        file.Write(text);
        file.Flush(flushToDisk: true);
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8);
}
