using System.Threading.Tasks.Sources;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// One in-flight request slot of a <see cref="RequestSlotPool"/>: a reusable awaitable, so a request allocates nothing.
/// The receive thread is the only one that completes it, which is what makes writing a READ reply straight into
/// the caller's buffer safe: once the awaiter resumes, nobody touches that buffer again.
/// </summary>
internal sealed class DaemonRequest : IValueTaskSource<DaemonReply>
{
    private readonly RequestSlotPool _owner;
    private ManualResetValueTaskSourceCore<DaemonReply> _core;

    public DaemonRequest(RequestSlotPool owner, int index)
    {
        _owner = owner;
        Index = index;
        _core.RunContinuationsAsynchronously = false;
    }

    public int Index { get; }

    /// <summary>Sequence in the upper bits of the request id, so a reply for an earlier use of the slot is caught.</summary>
    public ulong RequestId { get; private set; }

    public DaemonOpcode Opcode { get; private set; }

    /// <summary>Where a READ reply's data goes.</summary>
    public Memory<byte> Destination { get; private set; }

    /// <summary>Deadline in <see cref="TimeProvider.GetTimestamp"/> ticks; 0 while the slot is free.</summary>
    public long Deadline;

    private int _claimed;

    public void Begin(ulong sequence, DaemonOpcode opcode, Memory<byte> destination, long deadline)
    {
        RequestId = (sequence << 16) | (uint)Index;
        Opcode = opcode;
        Destination = destination;
        Volatile.Write(ref _claimed, 0);
        Interlocked.Exchange(ref Deadline, deadline);
    }

    /// <summary>True for exactly one caller per use: the one that may complete the slot (and write its destination).</summary>
    public bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;

    public ValueTask<DaemonReply> Task => new(this, _core.Version);

    public void Complete(DaemonReply reply)
    {
        Volatile.Write(ref Deadline, 0);
        Destination = default;
        _core.SetResult(reply);
    }

    public void Fail(Exception error)
    {
        Volatile.Write(ref Deadline, 0);
        Destination = default;
        _core.SetException(error);
    }

    public DaemonReply GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            _owner.Release(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
