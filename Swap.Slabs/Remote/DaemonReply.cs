using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>The outcome of one daemon request: its status and, for the control operations, the decoded reply body.</summary>
public readonly record struct DaemonReply(DaemonStatus Status, uint FreeSlabs, SlabGrant Grant, DaemonStats Stats)
{
    public bool Ok => Status == DaemonStatus.Ok;
}
