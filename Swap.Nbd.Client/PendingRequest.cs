using System.Threading.Tasks.Sources;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>
/// One request in flight, reused across requests so the hot path allocates nothing: it is its own awaitable
/// (<see cref="IValueTaskSource"/>) and goes back to its pool when the caller has observed the result.
/// Only the receive loop completes it; only the send loop reads it for sending.
/// </summary>
internal sealed class PendingRequest : IValueTaskSource
{
    private readonly RequestPool? _pool;
    private ManualResetValueTaskSourceCore<bool> _core;

    public PendingRequest(RequestPool? pool, bool inlineCompletions)
    {
        _pool = pool;
        _core.RunContinuationsAsynchronously = !inlineCompletions;
    }

    public NbdCommand Command;
    public NbdCommandFlags Flags;
    public ulong Cookie;
    public ulong Offset;
    public uint Length;
    public Memory<byte> Destination;
    public ReadOnlyMemory<byte> Payload;
    public List<NbdExtent>? Extents;

    /// <summary>First error reported by the server for this request (later chunks may still arrive).</summary>
    public NbdError Error;
    public string? ErrorMessage;

    /// <summary>READ bytes covered by data and hole chunks, to catch a server that says DONE too early.</summary>
    public long BytesCovered;

    /// <summary>Set once the header is in the output buffer: a reply before that is a server bug, not a race.</summary>
    public volatile bool Sent;

    public short Version => _core.Version;

    public void Prepare(NbdCommand command, NbdCommandFlags flags, ulong offset, uint length)
    {
        Command = command;
        Flags = flags;
        Offset = offset;
        Length = length;
    }

    public void Complete()
    {
        if (Error == NbdError.None)
        {
            _core.SetResult(true);
        }
        else
        {
            _core.SetException(new NbdServerErrorException(Error, Command, Offset, Length, ErrorMessage));
        }
    }

    public void Fail(Exception exception) => _core.SetException(exception);

    public void GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            Recycle();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>Clears references (so caller buffers are not kept alive) and returns this object to its pool.</summary>
    public void Recycle()
    {
        Destination = default;
        Payload = default;
        Extents = null;
        Error = NbdError.None;
        ErrorMessage = null;
        BytesCovered = 0;
        Sent = false;
        _core.Reset();
        _pool?.Return(this);
    }
}
