using System.Buffers;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Hosting;
using Swap.BlockDevices;

namespace Swap.Nbd.Server.Connection;

internal sealed partial class NbdConnection
{
    /// <summary>An invalid WRITE's payload up to this size is read and dropped; a larger one closes the connection.</summary>
    internal const long MaxSkippablePayload = 128L * 1024 * 1024;
    private const int MaxExtentsPerReply = 1024;

    private readonly Lock _progressLock = new();
    private TaskCompletionSource? _progress;
    private long _inFlight;
    private long _inFlightBytes;
    private long _discardRemaining;
    private NbdRequest _discardRequest;
    private NbdError _discardError;
    private AllocationExtent[]? _extents;
    private NbdTransmissionFlags _flags;

    /// <summary>Asks an idle connection to end now; a busy one ends once its current requests are answered.</summary>
    public void BeginShutdown() => _input.CancelPendingRead();

    private async Task TransmissionAsync()
    {
        // Fixed from here on; computed once so the per-request checks are plain bit tests.
        _flags = _export.FlagsFor(_structuredReplies);
        ServerLog.Transmission(_logger, Id, _structuredReplies);
        var ct = _abort.Token;
        var headerBytes = new byte[NbdRequest.Size];
        while (true)
        {
            var result = await _input.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            var replied = false;
            var disconnect = false;
            try
            {
                while (true)
                {
                    if (_discardRemaining > 0)
                    {
                        var n = Math.Min(_discardRemaining, buffer.Length);
                        buffer = buffer.Slice(n);
                        _discardRemaining -= n;
                        if (_discardRemaining > 0)
                        {
                            break;
                        }

                        await ReplyAsync(_discardRequest, _discardError, ct).ConfigureAwait(false);
                        replied = true;
                    }

                    if (buffer.Length < NbdRequest.Size)
                    {
                        break;
                    }

                    buffer.Slice(0, NbdRequest.Size).CopyTo(headerBytes);
                    NbdRequest.TryRead(headerBytes, out var request);
                    var error = Validate(request);
                    if (request.Command == NbdCommand.Write)
                    {
                        if (error != NbdError.None)
                        {
                            if (request.Length > MaxSkippablePayload)
                            {
                                NbdProtocolException.Throw($"WRITE with a {request.Length}-byte payload");
                            }

                            buffer = buffer.Slice(NbdRequest.Size);
                            (_discardRemaining, _discardRequest, _discardError) = (request.Length, request, error);
                            if (request.Length == 0)
                            {
                                await ReplyAsync(request, error, ct).ConfigureAwait(false);
                                replied = true;
                            }

                            continue;
                        }

                        if (buffer.Length < NbdRequest.Size + request.Length)
                        {
                            break;
                        }
                    }

                    buffer = buffer.Slice(NbdRequest.Size);
                    if (request.Command == NbdCommand.Disconnect)
                    {
                        disconnect = true;
                        break;
                    }

                    var payload = request.Command == NbdCommand.Write ? buffer.Slice(0, request.Length) : default;
                    buffer = buffer.Slice(payload.Length);
                    if (error == NbdError.None && _state.IsStopping)
                    {
                        error = NbdError.Shutdown;
                    }

                    if (error != NbdError.None)
                    {
                        await ReplyAsync(request, error, ct).ConfigureAwait(false);
                    }
                    else
                    {
                        await DispatchAsync(request, payload, ct).ConfigureAwait(false);
                    }

                    replied = true;
                }
            }
            finally
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (replied)
            {
                await FlushRepliesAsync(ct).ConfigureAwait(false);
            }

            // Stopping: whatever the client has already sent is still read and answered (ESHUTDOWN for new
            // requests); the connection ends once nothing more is waiting.
            if (disconnect || result.IsCompleted || (_state.IsStopping && buffer.IsEmpty && _socket.Available == 0))
            {
                break;
            }
        }

        await WaitForInFlightAsync().ConfigureAwait(false);
        await FlushRepliesAsync(ct).ConfigureAwait(false);
    }

    private NbdError Validate(in NbdRequest request)
    {
        var flags = _flags;
        var allowed = NbdCommandFlags.Fua;
        var writes = false;
        switch (request.Command)
        {
            case NbdCommand.Read:
                if (_structuredReplies)
                {
                    allowed |= NbdCommandFlags.Df;
                }

                break;
            case NbdCommand.Write:
                writes = true;
                break;
            case NbdCommand.Disconnect:
                return NbdError.None;
            case NbdCommand.Flush:
                if ((flags & NbdTransmissionFlags.SendFlush) == 0 || request.Offset != 0 || request.Length != 0)
                {
                    return NbdError.Inval;
                }

                break;
            case NbdCommand.Trim:
                if ((flags & NbdTransmissionFlags.SendTrim) == 0)
                {
                    return NbdError.Inval;
                }

                writes = true;
                break;
            case NbdCommand.WriteZeroes:
                if ((flags & NbdTransmissionFlags.SendWriteZeroes) == 0)
                {
                    return NbdError.Inval;
                }

                allowed |= NbdCommandFlags.NoHole;
                if ((flags & NbdTransmissionFlags.SendFastZero) != 0)
                {
                    allowed |= NbdCommandFlags.FastZero;
                }

                writes = true;
                break;
            case NbdCommand.Cache:
                break;
            case NbdCommand.BlockStatus:
                if (!_structuredReplies || !_metaContextSelected)
                {
                    return NbdError.Inval;
                }

                allowed |= NbdCommandFlags.ReqOne;
                break;
            default:
                return NbdError.Inval;
        }

        if ((request.Flags & ~allowed) != 0 ||
            ((request.Flags & NbdCommandFlags.Fua) != 0 && (flags & NbdTransmissionFlags.SendFua) == 0))
        {
            return NbdError.Inval;
        }

        if (request.Command is NbdCommand.Read or NbdCommand.Write && request.Length > NbdServerOptions.MaxPayload)
        {
            return request.Command == NbdCommand.Read ? NbdError.Inval : NbdError.Overflow;
        }

        if (writes && (flags & NbdTransmissionFlags.ReadOnly) != 0)
        {
            return NbdError.Perm;
        }

        var size = (ulong)_export.Device.Size;
        if (request.Offset > size || request.Length > size - request.Offset)
        {
            return request.Command is NbdCommand.Write or NbdCommand.WriteZeroes ? NbdError.NoSpc : NbdError.Inval;
        }

        var block = (ulong)_export.Device.MinimumBlockSize;
        if (block > 1 && ((request.Offset | request.Length) & (block - 1)) != 0)
        {
            return NbdError.Inval;
        }

        if (request.Command == NbdCommand.BlockStatus && request.Length == 0)
        {
            return NbdError.Inval;
        }

        return NbdError.None;
    }

    private async ValueTask DispatchAsync(NbdRequest request, ReadOnlySequence<byte> payload, CancellationToken ct)
    {
        var device = _export.Device;
        var offset = (long)request.Offset;
        var fua = (request.Flags & NbdCommandFlags.Fua) != 0;
        switch (request.Command)
        {
            case NbdCommand.Read:
                if (await TryReadInlineAsync(request, ct).ConfigureAwait(false))
                {
                    return;
                }

                await WaitForBudgetAsync(request.Length).ConfigureAwait(false);
                var readBuffer = _buffers.Rent((int)request.Length);
                Start(device.ReadAsync(offset, readBuffer.AsMemory(0, (int)request.Length), ct), request, readBuffer);
                return;

            case NbdCommand.Write:
                if (TryWriteInline(device, offset, payload, fua, out var writeError))
                {
                    await ReplyAsync(request, writeError, ct).ConfigureAwait(false);
                    return;
                }

                await WaitForBudgetAsync(request.Length).ConfigureAwait(false);
                var writeBuffer = _buffers.Rent((int)request.Length);
                payload.CopyTo(writeBuffer);
                Start(device.WriteAsync(offset, writeBuffer.AsMemory(0, (int)request.Length), fua, ct), request, writeBuffer);
                return;

            case NbdCommand.Flush:
                await CompleteAsync(device.FlushAsync(ct), request, ct).ConfigureAwait(false);
                return;

            case NbdCommand.Trim:
                await CompleteAsync(device.TrimAsync(offset, request.Length, fua, ct), request, ct).ConfigureAwait(false);
                return;

            case NbdCommand.WriteZeroes:
                await CompleteAsync(device.WriteZeroesAsync(offset, request.Length,
                    (request.Flags & NbdCommandFlags.NoHole) != 0, (request.Flags & NbdCommandFlags.FastZero) != 0, fua, ct), request, ct).ConfigureAwait(false);
                return;

            case NbdCommand.Cache:
                // A prefetch hint: everything is in memory already.
                await ReplyAsync(request, NbdError.None, ct).ConfigureAwait(false);
                return;

            case NbdCommand.BlockStatus:
                await ReplyBlockStatusAsync(request, ct).ConfigureAwait(false);
                return;
        }
    }

    /// <summary>Serves a READ straight into the reply buffer when the device has the data at hand.</summary>
    private async ValueTask<bool> TryReadInlineAsync(NbdRequest request, CancellationToken ct)
    {
        await EnterWriteLockAsync(ct).ConfigureAwait(false);
        try
        {
            var prefix = _structuredReplies ? NbdStructuredReply.OffsetDataPrefixSize : NbdSimpleReply.Size;
            var length = (int)request.Length;
            if (length == 0)
            {
                WriteOk(request);
            }
            else
            {
                var span = _output.GetSpan(prefix + length);
                bool done;
                try
                {
                    done = _export.Device.TryRead((long)request.Offset, span.Slice(prefix, length));
                }
                catch (BlockDeviceException ex)
                {
                    WriteError(request, MapError(request, ex));
                    return true;
                }

                if (!done)
                {
                    return false;
                }

                WriteReadPrefix(request, span);
                _output.Advance(prefix + length);
            }

            await FlushIfFullAsync(ct).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private bool TryWriteInline(IBlockDevice device, long offset, in ReadOnlySequence<byte> payload, bool fua, out NbdError error)
    {
        error = NbdError.None;
        try
        {
            if (payload.IsSingleSegment)
            {
                return device.TryWrite(offset, payload.FirstSpan, fua);
            }

            // Split across receive segments (at any byte, not at a page): joined first, so the device sees one write
            // of whole pages rather than two with part pages at the seam, which it would have to complete from disk.
            var joined = _buffers.Rent((int)payload.Length);
            try
            {
                payload.CopyTo(joined);
                return device.TryWrite(offset, joined.AsSpan(0, (int)payload.Length), fua);
            }
            finally
            {
                _buffers.Return(joined);
            }
        }
        catch (BlockDeviceException ex)
        {
            error = MapError(new NbdRequest(0, NbdCommand.Write, 0, (ulong)offset, (uint)payload.Length), ex);
            return true;
        }
    }

    /// <summary>Replies at once if the operation finished synchronously, otherwise when it does.</summary>
    private async ValueTask CompleteAsync(ValueTask operation, NbdRequest request, CancellationToken ct)
    {
        if (!operation.IsCompleted)
        {
            Start(operation, request, null);
            return;
        }

        var error = NbdError.None;
        try
        {
            operation.GetAwaiter().GetResult();
        }
        catch (BlockDeviceException ex)
        {
            error = MapError(request, ex);
        }

        await ReplyAsync(request, error, ct).ConfigureAwait(false);
    }

    private void Start(ValueTask operation, NbdRequest request, byte[]? buffer)
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Add(ref _inFlightBytes, request.Length);
        if (buffer is not null)
        {
            _state.AddBufferBytes(buffer.Length);
        }

        _ = FinishAsync(operation, request, buffer);
    }

    private async Task FinishAsync(ValueTask operation, NbdRequest request, byte[]? buffer)
    {
        var error = NbdError.None;
        try
        {
            await operation.ConfigureAwait(false);
        }
        catch (BlockDeviceException ex)
        {
            error = MapError(request, ex);
        }
        catch (OperationCanceledException)
        {
            error = NbdError.Shutdown;
        }

        try
        {
            await EnterWriteLockAsync(_abort.Token).ConfigureAwait(false);
            try
            {
                if (error == NbdError.None && request.Command == NbdCommand.Read && buffer is not null)
                {
                    var prefix = _structuredReplies ? NbdStructuredReply.OffsetDataPrefixSize : NbdSimpleReply.Size;
                    var span = _output.GetSpan(prefix + (int)request.Length);
                    buffer.AsSpan(0, (int)request.Length).CopyTo(span[prefix..]);
                    WriteReadPrefix(request, span);
                    _output.Advance(prefix + (int)request.Length);
                }
                else
                {
                    WriteStatus(request, error);
                }

                await FlushAsync(_abort.Token).ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            Abort();
        }
        finally
        {
            if (buffer is not null)
            {
                _state.AddBufferBytes(-buffer.Length);
                _buffers.Return(buffer);
            }

            Interlocked.Add(ref _inFlightBytes, -request.Length);
            Interlocked.Decrement(ref _inFlight);
            SignalProgress();
        }
    }

    /// <summary>
    /// Takes the reply lock. The connection's own thread waits blocking: a contended <c>WaitAsync</c> continues on the
    /// thread pool (a hop, and a pool thread woken), which a QD1 client's next request met whenever it arrived before
    /// the previous reply's sender had let go; blocking that thread holds up only this connection's client. Any other
    /// thread (a daemon link's receive thread completing a request) must not block on one client that stopped
    /// reading, so it waits asynchronously.
    /// </summary>
    private ValueTask EnterWriteLockAsync(CancellationToken ct)
    {
        if (_writeLock.Wait(0, ct))
        {
            return ValueTask.CompletedTask;
        }

        if (Environment.CurrentManagedThreadId == _transport.ThreadId)
        {
            _writeLock.Wait(ct);
            return ValueTask.CompletedTask;
        }

        return new ValueTask(_writeLock.WaitAsync(ct));
    }

    private async ValueTask ReplyAsync(NbdRequest request, NbdError error, CancellationToken ct)
    {
        await EnterWriteLockAsync(ct).ConfigureAwait(false);
        try
        {
            WriteStatus(request, error);
            await FlushIfFullAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask ReplyBlockStatusAsync(NbdRequest request, CancellationToken ct)
    {
        _extents ??= new AllocationExtent[MaxExtentsPerReply];
        var count = _export.Device.GetAllocation((long)request.Offset, request.Length,
            (request.Flags & NbdCommandFlags.ReqOne) != 0 ? _extents.AsSpan(0, 1) : _extents);
        await EnterWriteLockAsync(ct).ConfigureAwait(false);
        try
        {
            var size = NbdStructuredReply.BlockStatusPrefixSize + (count * 8);
            var span = _output.GetSpan(size);
            NbdStructuredReply.WriteBlockStatusPrefix(span, request.Cookie, BaseAllocationContextId, count);
            for (var i = 0; i < count; i++)
            {
                var e = _extents[i];
                var state = (e.Hole ? NbdAllocationState.Hole : 0) | (e.Zero ? NbdAllocationState.Zero : 0);
                NbdStructuredReply.WriteExtent(span[(NbdStructuredReply.BlockStatusPrefixSize + (i * 8))..], (uint)e.Length, state);
            }

            _output.Advance(size);
            await FlushIfFullAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void WriteStatus(in NbdRequest request, NbdError error)
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

    private void WriteOk(in NbdRequest request)
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

    private void WriteError(in NbdRequest request, NbdError error)
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

    private void WriteReadPrefix(in NbdRequest request, Span<byte> span)
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

    private ValueTask FlushIfFullAsync(CancellationToken ct) =>
        _output.UnflushedBytes >= FlushThreshold ? FlushAsync(ct) : ValueTask.CompletedTask;

    private async ValueTask FlushRepliesAsync(CancellationToken ct)
    {
        await EnterWriteLockAsync(ct).ConfigureAwait(false);
        try
        {
            if (_output.UnflushedBytes > 0)
            {
                await FlushAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private NbdError MapError(in NbdRequest request, BlockDeviceException ex)
    {
        ServerLog.DeviceError(_logger, Id, request.Command.ToString(), request.Offset, request.Length, ex.Message);
        return ex.Error switch
        {
            BlockDeviceError.NoSpace => NbdError.NoSpc,
            BlockDeviceError.NotSupported => NbdError.NotSup,
            BlockDeviceError.ReadOnly => NbdError.Perm,
            BlockDeviceError.Invalid => NbdError.Inval,
            BlockDeviceError.Shutdown => NbdError.Shutdown,
            _ => NbdError.Io,
        };
    }

    /// <summary>
    /// Waits while this connection's requests in flight exceed its own budget, or all connections' request buffers
    /// exceed the server's. Only a connection with requests of its own in flight waits (for them), so no connection
    /// waits on another: each may always start one.
    /// </summary>
    private async ValueTask WaitForBudgetAsync(uint bytes)
    {
        while (OverBudget(bytes))
        {
            var progress = ProgressTask();
            if (OverBudget(bytes))
            {
                ServerLog.WaitingForBudget(_logger, Id, bytes);
                await progress.ConfigureAwait(false);
            }
        }
    }

    private bool OverBudget(uint bytes) =>
        Interlocked.Read(ref _inFlight) > 0 &&
        (Interlocked.Read(ref _inFlightBytes) + bytes > _options.MaxInFlightBytes || _state.BufferBytes + bytes > _state.BufferBudget);

    private async Task WaitForInFlightAsync()
    {
        while (Interlocked.Read(ref _inFlight) > 0)
        {
            var progress = ProgressTask();
            if (Interlocked.Read(ref _inFlight) > 0)
            {
                await progress.ConfigureAwait(false);
            }
        }
    }

    private Task ProgressTask()
    {
        lock (_progressLock)
        {
            _progress ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _progress.Task;
        }
    }

    private void SignalProgress()
    {
        TaskCompletionSource? progress;
        lock (_progressLock)
        {
            progress = _progress;
            _progress = null;
        }

        progress?.TrySetResult();
    }
}
