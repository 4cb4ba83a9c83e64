using Swap.BlockDevices;
using Swap.Common.Status;
using Swap.Slabs.Mapping;

namespace Swap.Server.Status;

/// <summary>
/// What the status file says: the export, its clients, and where its pages are (per donor daemon and on the backup
/// disk in slab mode, in the server's memory otherwise). Sizes are bytes; one page is 4096 bytes.
/// </summary>
public sealed record ServerStatus(
    DateTimeOffset Time,
    int Pid,
    string State,
    string Export,
    long Size,
    string Backend,
    int Connections,
    long? MemoryBytes,
    SlabStatus? Slabs) : IStatusSnapshot
{
    public const long PageSize = 4096;

    /// <summary>A snapshot of <paramref name="device"/> now; <paramref name="state"/> is "serving" or "stopped".</summary>
    public static ServerStatus Capture(IBlockDevice device, string export, string? backupDisk, int connections, string state, DateTimeOffset time) =>
        device switch
        {
            SwapDevice swap => new ServerStatus(time, Environment.ProcessId, state, export, device.Size, "slabs", connections, null, SlabStatus.From(swap, backupDisk)),
            SparseMemoryDevice memory => new ServerStatus(time, Environment.ProcessId, state, export, device.Size, "memory", connections, memory.AllocatedBytes, null),
            _ => new ServerStatus(time, Environment.ProcessId, state, export, device.Size, device.GetType().Name, connections, null, null),
        };
}
