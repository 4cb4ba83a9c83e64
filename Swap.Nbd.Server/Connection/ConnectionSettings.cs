using System.Buffers;

namespace Swap.Nbd.Server.Connection;

/// <summary>The limits a connection runs under, taken from the host's options (which this layer does not know).</summary>
/// <param name="HandshakeTimeout">A client that has not finished option haggling by then is disconnected.</param>
/// <param name="MaxInFlightBytes">Payload bytes of requests in progress before the connection stops reading more.</param>
/// <param name="PollMicroseconds">How long the connection's thread polls for the next request before it sleeps; 0 for never.</param>
/// <param name="PipeBlocks">Where the connection's input and output pipes take their memory (pinned blocks kept for good).</param>
internal sealed record ConnectionSettings(TimeSpan HandshakeTimeout, long MaxInFlightBytes, int PollMicroseconds, MemoryPool<byte> PipeBlocks);
