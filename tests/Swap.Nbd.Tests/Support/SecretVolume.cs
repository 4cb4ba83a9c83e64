using System.Runtime.Versioning;
using Swap.Common.Security;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A cluster key laid out as the kubelet writes a Secret volume: the file in a timestamped directory,
/// <c>..data</c> linking to that directory, and the key's name linking through <c>..data</c>.
/// </summary>
[UnsupportedOSPlatform("windows")]
internal static class SecretVolume
{
    /// <summary>
    /// Writes a key into a volume under <paramref name="volume"/> (a copy of <paramref name="key"/>, or a new one);
    /// returns the key's path (the link) and the file behind it.
    /// </summary>
    public static (string Link, string File) Create(string volume, string name, UnixFileMode mode, string? key = null)
    {
        var generation = Path.Combine(volume, "..2026_12_02_14_00_00.000000001");
        Directory.CreateDirectory(generation);
        var file = Path.Combine(generation, name);
        if (key is null)
        {
            ClusterKeyFile.Create(file, force: false);
        }
        else
        {
            System.IO.File.Copy(key, file);
        }

        System.IO.File.SetUnixFileMode(file, mode);
        Directory.CreateSymbolicLink(Path.Combine(volume, "..data"), Path.GetFileName(generation));
        var link = Path.Combine(volume, name);
        System.IO.File.CreateSymbolicLink(link, Path.Combine("..data", name));
        return (link, file);
    }
}
