namespace Swap.Donor.Status;

/// <summary>
/// One client id (one server) in the daemon's status file: its slabs, their bytes at full size and committed, its open
/// connections (0 while in its grace period, when its slabs are kept for a reconnect).
/// </summary>
public sealed record DonorClientStatus(string Client, int Slabs, long BytesLent, long BytesCommitted, int Connections, bool InGracePeriod);
