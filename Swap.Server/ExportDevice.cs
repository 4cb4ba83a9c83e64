using System.Net;
using Microsoft.Extensions.Logging;
using Swap.Common.Security;
using Swap.Slabs.Backup;
using Swap.BlockDevices;
using Swap.Slabs.Mapping;
using Swap.Slabs.Placement;
using Swap.Server.Portal;

namespace Swap.Server;

/// <summary>Builds the storage the options ask for: sparse memory, or the swap device over donor daemons and a backup disk.</summary>
public static class ExportDevice
{
    /// <summary>
    /// Throws <see cref="PortalListException"/>, <see cref="BackupDiskException"/> or <see cref="ClusterKeyException"/>
    /// (messages name the file and the fix) when slab mode cannot start. A swap device starts connecting to its
    /// daemons before it returns.
    /// </summary>
    /// <param name="daemons">The donors to start with; null: read the portal.list file <see cref="ServerOptions.Portal"/> names.</param>
    public static IBlockDevice Create(ServerOptions options, ILoggerFactory loggerFactory, TimeProvider? time = null,
        IReadOnlyList<(string Name, EndPoint EndPoint)>? daemons = null)
    {
        if (options.Backend != "slabs")
        {
            return new SparseMemoryDevice(options.Size);
        }

        var key = options.AuthKeyFile is { } keyFile ? ClusterKeyFile.Load(keyFile) : null;
        daemons ??= new FilePortalSource(options.Portal!).Load();
        var disk = BackupDisk.Open(options.BackupDisk!, options.Size, options.BackupIoMode, loggerFactory.CreateLogger<BackupDisk>());
        // A stable id, so daemons free what an earlier run of this server held as soon as it says hello.
        var slabs = options.Slabs.ClientId != 0 ? options.Slabs : options.Slabs with { ClientId = StableClientId.For(disk) };
        slabs = slabs with { Links = slabs.Links with { AuthKey = key, InsecureNoAuth = key is null } };
        var device = new SwapDevice(options.Size, disk, daemons, slabs, time, loggerFactory);
        device.Start();
        return device;
    }
}
