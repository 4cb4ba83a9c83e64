using Swap.Slabs.Backup;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The client id a server gives its daemons, derived from this host and its backup disk, so a restarted server is
/// recognised and its earlier slabs are freed at once (HELLO with RELEASE_SLABS) rather than after the grace period.
/// Two servers on one host cannot share a backup disk (it is locked), so they never share an id.
/// </summary>
public static class StableClientId
{
    private const string MachineIdPath = "/etc/machine-id";

    public static ulong For(BackupDisk disk)
    {
        ArgumentNullException.ThrowIfNull(disk);
        return Derive(HostIdentity(), disk.Identity.Device, disk.Identity.Inode);
    }

    /// <summary>A 64-bit mix (FNV-1a, then a splitmix64 finish) of the host's identity and the disk's; never 0.</summary>
    public static ulong Derive(string host, ulong device, ulong inode)
    {
        ArgumentNullException.ThrowIfNull(host);
        var hash = 0xcbf29ce484222325UL;
        foreach (var c in host)
        {
            hash = (hash ^ c) * 0x100000001b3UL;
        }

        hash = Mix(hash ^ Mix(device) ^ Mix(inode + 0x9e3779b97f4a7c15UL));
        return hash == 0 ? 1 : hash;
    }

    /// <summary>/etc/machine-id plus the host name: cloned machines often share one of them, rarely both.</summary>
    private static string HostIdentity()
    {
        var machineId = "";
        try
        {
            machineId = File.ReadAllText(MachineIdPath).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Containers may lack it; the host name still separates machines.
        }

        return machineId + "/" + Environment.MachineName;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
        return z ^ (z >> 31);
    }
}
