namespace Swap.Server.Status;

/// <summary>One donor daemon in the status file: reachable or not, its slabs, and the bytes of pages it holds current copies of.</summary>
public sealed record DaemonStatus(string Name, bool Up, int Slabs, long Bytes);
