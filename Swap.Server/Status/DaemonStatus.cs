namespace Swap.Server.Status;

/// <summary>
/// One donor daemon in the status file: reachable or not, its slabs, the bytes of pages it holds current copies of,
/// and the reads of its pages that failed to open.
/// </summary>
public sealed record DaemonStatus(string Name, bool Up, int Slabs, long Bytes, long OpenFailures);
