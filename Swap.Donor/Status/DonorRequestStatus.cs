namespace Swap.Donor.Status;

/// <summary>Requests of one opcode answered since the daemon started, and their page bytes (read or written).</summary>
public sealed record DonorRequestStatus(string Opcode, long Requests, long Bytes);
