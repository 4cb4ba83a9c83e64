namespace Swap.Server.Status;

/// <summary>
/// One donor daemon in the status file: reachable or not, its slabs, the bytes of pages it holds current copies of,
/// the reads of its pages that failed to open, its recent median READ latency in µs (-1 before enough reads) and the
/// bound after which its reads are also asked of the backup disk, in µs (-1 with hedging off); its state: "up",
/// "down", or "draining" (it left the portal and its slabs are moving off it before its link closes).
/// </summary>
public sealed record DaemonStatus(string Name, bool Up, int Slabs, long Bytes, long OpenFailures, long ReadMedianUs, long HedgeBoundUs, string State = "up");
