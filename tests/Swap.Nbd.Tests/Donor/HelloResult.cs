using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Donor;

/// <summary>What a HELLO got: the status and, when OK, the welcome with the nonces and the daemon's proof.</summary>
internal sealed record HelloResult(DaemonStatus Status, DaemonWelcome Welcome, byte[] ClientNonce, byte[] DaemonNonce, byte[] DaemonProof);
