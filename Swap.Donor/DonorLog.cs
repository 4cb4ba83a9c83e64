using Microsoft.Extensions.Logging;

namespace Swap.Donor;

/// <summary>Source-generated log messages of the donor daemon, with stable event ids.</summary>
internal static partial class DonorLog
{
    [LoggerMessage(1, LogLevel.Information, "Donor daemon listening on {EndPoint}: lending at most {MaxMemory} bytes, headroom {Headroom} bytes")]
    public static partial void Listening(ILogger logger, string endPoint, long maxMemory, long headroom);

    [LoggerMessage(2, LogLevel.Debug, "Connection {Id} from {Remote} accepted")]
    public static partial void Accepted(ILogger logger, long id, string remote);

    [LoggerMessage(3, LogLevel.Debug, "Connection {Id} closed")]
    public static partial void Closed(ILogger logger, long id);

    [LoggerMessage(4, LogLevel.Warning, "Connection {Id} dropped: {Reason}")]
    public static partial void ProtocolViolation(ILogger logger, long id, string reason);

    [LoggerMessage(5, LogLevel.Information, "Connection {Id}: client {ClientId:x16} says hello")]
    public static partial void Hello(ILogger logger, long id, ulong clientId);

    [LoggerMessage(6, LogLevel.Warning, "Connection {Id}: client {ClientId:x16} refused, {Limit} clients already served")]
    public static partial void ClientLimit(ILogger logger, long id, ulong clientId, int limit);

    [LoggerMessage(7, LogLevel.Debug, "Slab {SlabId} epoch {Epoch} ({Size} bytes) lent to client {ClientId:x16} for its slab {ServerSlab}")]
    public static partial void SlabAllocated(ILogger logger, uint slabId, uint epoch, long size, ulong clientId, uint serverSlab);

    [LoggerMessage(8, LogLevel.Debug, "Slab {SlabId} epoch {Epoch} freed by client {ClientId:x16}")]
    public static partial void SlabFreed(ILogger logger, uint slabId, uint epoch, ulong clientId);

    [LoggerMessage(9, LogLevel.Information, "Slab {SlabId} epoch {Epoch} of client {ClientId:x16} evicted ({Committed} bytes committed)")]
    public static partial void SlabEvicted(ILogger logger, uint slabId, uint epoch, ulong clientId, long committed);

    [LoggerMessage(10, LogLevel.Information, "Client {ClientId:x16}: last connection closed, slabs kept for {Grace}")]
    public static partial void GraceStarted(ILogger logger, ulong clientId, TimeSpan grace);

    [LoggerMessage(11, LogLevel.Information, "Client {ClientId:x16}: grace period over, {Slabs} slabs freed")]
    public static partial void GraceExpired(ILogger logger, ulong clientId, int slabs);

    [LoggerMessage(12, LogLevel.Information, "Client {ClientId:x16} is back within its grace period with {Slabs} slabs")]
    public static partial void GraceResumed(ILogger logger, ulong clientId, int slabs);

    [LoggerMessage(13, LogLevel.Information, "Stopping: {Connections} connections, {Slabs} slabs")]
    public static partial void Stopping(ILogger logger, int connections, int slabs);

    [LoggerMessage(14, LogLevel.Warning, "MemAvailable {Available} bytes is under the headroom of {Headroom} bytes: evicting")]
    public static partial void MemoryPressure(ILogger logger, long available, long headroom);

    [LoggerMessage(15, LogLevel.Error, "Connection {Id}: {Opcode} failed")]
    public static partial void RequestFailed(ILogger logger, Exception exception, long id, string opcode);

    // 16 was "Fault points set": fault injection lives in the test project's transport layer now. Not reused.

    [LoggerMessage(17, LogLevel.Error, "Memory monitor failed")]
    public static partial void MonitorFailed(ILogger logger, Exception exception);

    [LoggerMessage(18, LogLevel.Warning, "Accept failed on {EndPoint}")]
    public static partial void AcceptFailed(ILogger logger, Exception exception, string endPoint);

    [LoggerMessage(19, LogLevel.Error, "Connection {Id} failed unexpectedly")]
    public static partial void ConnectionFailed(ILogger logger, Exception exception, long id);

    [LoggerMessage(20, LogLevel.Warning, "Connection from {Remote} refused: {Limit} connections already open")]
    public static partial void TooManyConnections(ILogger logger, string remote, int limit);

    [LoggerMessage(21, LogLevel.Information, "Client {ClientId:x16} started afresh: its {Slabs} earlier slabs freed")]
    public static partial void SlabsReleased(ILogger logger, ulong clientId, int slabs);

    [LoggerMessage(22, LogLevel.Warning, "Connection {Id}: no HELLO within {Timeout}; closed")]
    public static partial void NoHello(ILogger logger, long id, TimeSpan timeout);

    [LoggerMessage(23, LogLevel.Warning, "Connection {Id} from {Remote} refused: {Reason}")]
    public static partial void HandshakeRefused(ILogger logger, long id, string remote, string reason);

    [LoggerMessage(24, LogLevel.Warning, "Running without authentication (--insecure-no-auth): whoever reaches {EndPoint} can read, write and free every server's slabs")]
    public static partial void Insecure(ILogger logger, string endPoint);

    [LoggerMessage(40, LogLevel.Warning, "Connection {Id} from {Remote} closed before its HELLO to admit connection {NewId} from {NewRemote}: " +
        "{Limit} connections were already waiting for their HELLO (MaxHandshakes)")]
    public static partial void HandshakeEvicted(ILogger logger, long id, string remote, long newId, string newRemote, int limit);

    [LoggerMessage(41, LogLevel.Information, "Metrics in Prometheus' text format on {Url}")]
    public static partial void Metrics(ILogger logger, string url);
}
