using Swap.Daemon.Protocol;

namespace Swap.Donor.Connections;

/// <summary>What the handshake answers: the reply's status and body length, and whether the connection then closes.</summary>
internal readonly record struct HandshakeStep(DaemonStatus Status, int ReplyBodyLength, bool Close);
