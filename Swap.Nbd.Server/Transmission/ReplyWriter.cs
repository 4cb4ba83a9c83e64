using System.IO.Pipelines;
using System.Net.Sockets;
using Swap.BlockDevices;
using Swap.Common.Sockets;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Transport;

namespace Swap.Nbd.Server.Transmission;

/// <summary>
/// The one writer of a connection's replies, which leave in whatever order requests complete: owns the reply lock,
/// encodes simple and structured replies and decides when buffered replies are sent.
/// </summary>
/// <remarks>
/// Methods named <c>Write…</c>, <see cref="GetSpan"/>, <see cref="Advance"/> and <see cref="FlushIfFullAsync"/> need
/// the lock (<see cref="EnterAsync"/> ... <see cref="Exit"/>); the <c>…Async</c> replies take it themselves.
/// </remarks>
internal sealed class ReplyWriter
{
    // A reply batch is sent once this much is buffered, so a burst of large reads cannot pile up in memory.
    private const int FlushThreshold = 256 * 1024;

    /// <summary>READ replies at least this large that complete off the connection's thread are sent from their own
    /// buffer (<see cref="SendRead"/>) rather than copied into the output first.</summary>
    public const int DirectReadSize = 32 * 1024;

    private readonly PipeWriter _output;
    private readonly Socket? _socket;
    private readonly ReplyLock _lock = new();
    private readonly bool _structuredReplies;
    private readonly int _connectionThreadId;

    /// <param name="connectionThreadId">The managed id of the thread that receives requests and runs the protocol
    /// loop; only it may wait blocking for the lock.</param>
    /// <param name="socket">The socket under <paramref name="output"/> (which must send with blocking calls on flush),
    /// for READ replies sent straight from their buffers; null to copy every reply into the output.</param>
    public ReplyWriter(PipeWriter output, bool structuredReplies, int connectionThreadId, Socket? socket = null)
    {
        _output = output;
        _socket = socket;
        _structuredReplies = structuredReplies;
        _connectionThreadId = connectionThreadId;
        ReadPrefixSize = structuredReplies ? NbdStructuredReply.OffsetDataPrefixSize : NbdSimpleReply.Size;
    }

    /// <summary>Bytes in front of a READ reply's data: a simple reply, or a structured OFFSET_DATA chunk header.</summary>
    public int ReadPrefixSize { get; }

    /// <summary>
    /// Takes the reply lock. The connection's own thread waits blocking: a contended <c>WaitAsync</c> continues on the
    /// thread pool (a hop, and a pool thread woken), which a QD1 client's next request met whenever it arrived before
    /// the previous reply's sender had let go; blocking that thread holds up only this connection's client. Any other
    /// thread (a daemon link's receive thread completing a request) must not block on one client that stopped
    /// reading, so it waits asynchronously.
    /// </summary>
    public ValueTask EnterAsync(CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (_lock.TryEnter())
        {
            return ValueTask.CompletedTask;
        }

        if (Environment.CurrentManagedThreadId == _connectionThreadId)
        {
            _lock.Enter(ct);
            return ValueTask.CompletedTask;
        }

        return _lock.EnterAsync(ct);
    }

    public void Exit() => _lock.Exit();

    /// <summary>Room for a reply written in place (a READ's data read straight into it).</summary>
    public Span<byte> GetSpan(int size) => _output.GetSpan(size);

    public void Advance(int bytes) => _output.Advance(bytes);

    /// <summary>Replies to a request with success or <paramref name="error"/>.</summary>
    public async ValueTask ReplyAsync(NbdRequest request, NbdError error, CancellationToken ct)
    {
        await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            WriteStatus(request, error);
            await FlushIfFullAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Replies to a BLOCK_STATUS with the first <paramref name="count"/> of <paramref name="extents"/>.</summary>
    public async ValueTask ReplyBlockStatusAsync(NbdRequest request, AllocationExtent[] extents, int count, CancellationToken ct)
    {
        await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            var size = NbdStructuredReply.BlockStatusPrefixSize + (count * 8);
            var span = _output.GetSpan(size);
            NbdStructuredReply.WriteBlockStatusPrefix(span, request.Cookie, NbdSession.BaseAllocationContextId, count);
            for (var i = 0; i < count; i++)
            {
                var e = extents[i];
                var state = (e.Hole ? NbdAllocationState.Hole : 0) | (e.Zero ? NbdAllocationState.Zero : 0);
                NbdStructuredReply.WriteExtent(span[(NbdStructuredReply.BlockStatusPrefixSize + (i * 8))..], (uint)e.Length, state);
            }

            _output.Advance(size);
            await FlushIfFullAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Sends every buffered reply.</summary>
    public async ValueTask FlushRepliesAsync(CancellationToken ct)
    {
        await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            if (_output.UnflushedBytes > 0)
            {
                await FlushAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>A READ's successful reply carrying <paramref name="data"/>, copied once into the output.</summary>
    /// <remarks>In pieces as large as the output's blocks give: a span larger than a block would come from the shared
    /// array pool instead of the server's locked blocks.</remarks>
    public void WriteRead(in NbdRequest request, ReadOnlySpan<byte> data)
    {
        var prefix = _output.GetSpan(ReadPrefixSize);
        WriteReadPrefix(request, prefix);
        _output.Advance(ReadPrefixSize);
        while (!data.IsEmpty)
        {
            var span = _output.GetSpan();
            var n = Math.Min(span.Length, data.Length);
            data[..n].CopyTo(span);
            _output.Advance(n);
            data = data[n..];
        }
    }

    /// <summary>
    /// A READ's successful reply: for a large one when the socket is at hand, what the output holds is sent first, then
    /// the prefix and <paramref name="data"/> in one writev from where they are (one copy fewer per byte, the kernel's);
    /// otherwise written into the output and flushed. Needs the lock.
    /// </summary>
    public async ValueTask SendReadAsync(NbdRequest request, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (_socket is null || data.Length < DirectReadSize)
        {
            WriteRead(request, data.Span);
            await FlushAsync(ct).ConfigureAwait(false);
            return;
        }

        if (_output.UnflushedBytes > 0)
        {
            await FlushAsync(ct).ConfigureAwait(false);
        }

        SendRead(request, data.Span);
    }

    private void SendRead(in NbdRequest request, ReadOnlySpan<byte> data)
    {
        Span<byte> prefix = stackalloc byte[NbdStructuredReply.OffsetDataPrefixSize];
        prefix = prefix[..ReadPrefixSize];
        WriteReadPrefix(request, prefix);
        try
        {
            SocketGather.SendAll(_socket!, prefix, data);
        }
        catch (SocketException ex)
        {
            // As the output's own sends fail: the connection's failure handling sees an IOException.
            throw new IOException(ex.Message, ex);
        }
    }

    public void WriteStatus(in NbdRequest request, NbdError error)
    {
        if (error == NbdError.None)
        {
            WriteOk(request);
        }
        else
        {
            WriteError(request, error);
        }
    }

    public void WriteOk(in NbdRequest request)
    {
        if (_structuredReplies && request.Command == NbdCommand.Read)
        {
            // A zero-length READ has no data chunk to carry DONE.
            var span = _output.GetSpan(NbdStructuredReply.Size);
            new NbdStructuredReply(NbdReplyFlags.Done, NbdReplyChunkType.None, request.Cookie, 0).Write(span);
            _output.Advance(NbdStructuredReply.Size);
            return;
        }

        var simple = _output.GetSpan(NbdSimpleReply.Size);
        new NbdSimpleReply(NbdError.None, request.Cookie).Write(simple);
        _output.Advance(NbdSimpleReply.Size);
    }

    public void WriteError(in NbdRequest request, NbdError error)
    {
        // Once structured replies are on, every READ (and BLOCK_STATUS) reply must be structured, errors included.
        if (_structuredReplies && request.Command is NbdCommand.Read or NbdCommand.BlockStatus)
        {
            var span = _output.GetSpan(NbdStructuredReply.ErrorSize);
            NbdStructuredReply.WriteError(span, request.Cookie, error);
            _output.Advance(NbdStructuredReply.ErrorSize);
            return;
        }

        var simple = _output.GetSpan(NbdSimpleReply.Size);
        new NbdSimpleReply(error, request.Cookie).Write(simple);
        _output.Advance(NbdSimpleReply.Size);
    }

    /// <summary>Writes the <see cref="ReadPrefixSize"/> bytes in front of a READ reply's data at the start of <paramref name="span"/>.</summary>
    public void WriteReadPrefix(in NbdRequest request, Span<byte> span)
    {
        if (_structuredReplies)
        {
            NbdStructuredReply.WriteOffsetDataPrefix(span, NbdReplyFlags.Done, request.Cookie, request.Offset, request.Length);
        }
        else
        {
            new NbdSimpleReply(NbdError.None, request.Cookie).Write(span);
        }
    }

    public ValueTask FlushIfFullAsync(CancellationToken ct) =>
        _output.UnflushedBytes >= FlushThreshold ? FlushAsync(ct) : ValueTask.CompletedTask;

    public ValueTask FlushAsync(CancellationToken ct) => _output.FlushOrThrowAsync(ct);
}
