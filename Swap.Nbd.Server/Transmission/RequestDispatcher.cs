using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.BlockDevices;
using Swap.Common.Buffers;
using Swap.Common.Tasks;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Server.Transmission;

/// <summary>
/// Serves valid requests on the export's device: inline when the device has the data at hand (the reply is written
/// on the connection's thread), otherwise started with a pooled buffer and answered by whichever thread completes it.
/// </summary>
internal sealed class RequestDispatcher(
    long connectionId,
    IBlockDevice device,
    ReplyWriter replies,
    InFlightBudget budget,
    PinnedBufferPool buffers,
    Action abort,
    ILogger logger,
    NbdMetrics metrics,
    CancellationToken aborted)
{
    private const int MaxExtentsPerReply = 1024;

    /// <summary>WRITEs one batch holds at most (the slab device's limit).</summary>
    internal const int MaxHeldWrites = 32;

    /// <summary>
    /// Larger WRITEs are served at once, not held: a batch pays when the disk's round trip is most of a write's cost
    /// (4 KiB: ~57 µs of disk against ~20 µs of work here); a 128 KiB write costs as much in copies and sealing as on
    /// the disk, one receive holds only two of them, and holding them delays their replies and their trip to the
    /// daemons (bench.sh 128K write QD8: 0.81× when held, same run).
    /// </summary>
    internal const int MaxHeldWriteLength = 32 * 1024;

    private readonly bool _batchWrites = device.TakesWriteBatches;
    private readonly NbdRequest[] _heldRequests = new NbdRequest[MaxHeldWrites];
    private readonly BlockWrite[] _heldWrites = new BlockWrite[MaxHeldWrites];
    private readonly BlockDeviceException?[] _heldErrors = new BlockDeviceException?[MaxHeldWrites];
    private readonly long[] _heldStarted = new long[MaxHeldWrites];
    private int _held;
    private AllocationExtent[]? _extents;

    /// <summary>Serves one request that passed <see cref="RequestValidator"/>; <paramref name="payload"/> is a WRITE's
    /// data, valid only until the caller advances the input.</summary>
    public async ValueTask DispatchAsync(NbdRequest request, ReadOnlySequence<byte> payload, CancellationToken ct)
    {
        var offset = (long)request.Offset;
        var fua = (request.Flags & NbdCommandFlags.Fua) != 0;
        var started = metrics.Received(request.Command, request.Length);
        switch (request.Command)
        {
            case NbdCommand.Read:
                if (await TryReadInlineAsync(request, ct).ConfigureAwait(false))
                {
                    metrics.Answered(request.Command, started);
                    return;
                }

                await budget.WaitForRoomAsync(request.Length).ConfigureAwait(false);
                var readBuffer = await buffers.RentAsync((int)request.Length).ConfigureAwait(false);
                ValueTask read;
                try
                {
                    read = device.ReadAsync(offset, readBuffer.AsMemory(0, (int)request.Length), ct);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    read = ValueTask.FromException(ex);
                }

                Start(read, request, readBuffer, started);
                return;

            case NbdCommand.Write:
                await WriteAsync(request, payload, started, ct).ConfigureAwait(false);
                return;

            case NbdCommand.Flush:
            case NbdCommand.Trim:
            case NbdCommand.WriteZeroes:
                ValueTask operation;
                try
                {
                    operation = request.Command switch
                    {
                        NbdCommand.Flush => device.FlushAsync(ct),
                        NbdCommand.Trim => device.TrimAsync(offset, request.Length, fua, ct),
                        _ => device.WriteZeroesAsync(offset, request.Length, (request.Flags & NbdCommandFlags.NoHole) != 0,
                            (request.Flags & NbdCommandFlags.FastZero) != 0, fua, ct),
                    };
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // A device that throws instead of returning a faulted task: answered like one.
                    operation = ValueTask.FromException(ex);
                }

                await CompleteAsync(operation, request, started, ct).ConfigureAwait(false);
                return;

            case NbdCommand.Cache:
                // A prefetch hint: everything is in memory already.
                await replies.ReplyAsync(request, NbdError.None, ct).ConfigureAwait(false);
                metrics.Answered(request.Command, started);
                return;

            case NbdCommand.BlockStatus:
                _extents ??= new AllocationExtent[MaxExtentsPerReply];
                int count;
                try
                {
                    count = device.GetAllocation((long)request.Offset, request.Length,
                        (request.Flags & NbdCommandFlags.ReqOne) != 0 ? _extents.AsSpan(0, 1) : _extents);
                }
                catch (BlockDeviceException ex)
                {
                    await replies.ReplyAsync(request, MapError(request, ex), ct).ConfigureAwait(false);
                    metrics.Answered(request.Command, started);
                    return;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    await replies.ReplyAsync(request, Unexpected(request, ex), ct).ConfigureAwait(false);
                    metrics.Answered(request.Command, started);
                    return;
                }

                await replies.ReplyBlockStatusAsync(request, _extents, count, ct).ConfigureAwait(false);
                metrics.Answered(request.Command, started);
                return;
        }
    }

    /// <summary>
    /// Holds a WRITE for the batch instead of serving it now, when it can be batched (no FUA, its payload in one piece,
    /// room in the batch, a device that takes batches); false: flush the batch and dispatch it. A held WRITE's
    /// <paramref name="payload"/> must stay valid until <see cref="FlushWritesAsync"/>: call it before the caller
    /// advances the input.
    /// </summary>
    public bool TryHoldWrite(in NbdRequest request, in ReadOnlySequence<byte> payload)
    {
        if (!_batchWrites || _held == MaxHeldWrites || request.Length > MaxHeldWriteLength || (request.Flags & NbdCommandFlags.Fua) != 0 ||
            !payload.IsSingleSegment || payload.IsEmpty)
        {
            return false;
        }

        _heldRequests[_held] = request;
        _heldWrites[_held] = new BlockWrite((long)request.Offset, payload.First);
        _heldStarted[_held] = metrics.Received(request.Command, request.Length);
        _held++;
        return true;
    }

    /// <summary>
    /// Serves the WRITEs held by <see cref="TryHoldWrite"/>: as one batch on the device (its disk writes in flight
    /// together) when there are several and the device takes them, else one by one; then answers each. False when
    /// none were held.
    /// </summary>
    public async ValueTask<bool> FlushWritesAsync(CancellationToken ct)
    {
        var count = _held;
        if (count == 0)
        {
            return false;
        }

        _held = 0;
        var batched = false;
        if (count > 1)
        {
            try
            {
                batched = device.TryWriteBatch(_heldWrites.AsSpan(0, count), _heldErrors.AsSpan(0, count));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A device bug: every write of the batch is answered EIO (none may have been written whole).
                for (var i = 0; i < count; i++)
                {
                    await replies.ReplyAsync(_heldRequests[i], Unexpected(_heldRequests[i], ex), ct).ConfigureAwait(false);
                    metrics.Answered(NbdCommand.Write, _heldStarted[i]);
                }

                ClearHeld(count);
                return true;
            }
        }

        for (var i = 0; i < count; i++)
        {
            var request = _heldRequests[i];
            if (!batched)
            {
                await WriteAsync(request, new ReadOnlySequence<byte>(_heldWrites[i].Data), _heldStarted[i], ct).ConfigureAwait(false);
                continue;
            }

            var error = _heldErrors[i] is { } failure ? MapError(request, failure) : NbdError.None;
            await replies.ReplyAsync(request, error, ct).ConfigureAwait(false);
            metrics.Answered(NbdCommand.Write, _heldStarted[i]);
        }

        ClearHeld(count);
        return true;
    }

    // The held payloads point into the connection's input: not kept past the flush.
    private void ClearHeld(int count)
    {
        _heldWrites.AsSpan(0, count).Clear();
        _heldErrors.AsSpan(0, count).Clear();
    }

    private async ValueTask WriteAsync(NbdRequest request, ReadOnlySequence<byte> payload, long started, CancellationToken ct)
    {
        var offset = (long)request.Offset;
        var fua = (request.Flags & NbdCommandFlags.Fua) != 0;
        if (TryWriteInline(request, payload, fua, out var writeError))
        {
            await replies.ReplyAsync(request, writeError, ct).ConfigureAwait(false);
            metrics.Answered(request.Command, started);
            return;
        }

        await budget.WaitForRoomAsync(request.Length).ConfigureAwait(false);
        var writeBuffer = await buffers.RentAsync((int)request.Length).ConfigureAwait(false);
        payload.CopyTo(writeBuffer);
        ValueTask write;
        try
        {
            write = device.WriteAsync(offset, writeBuffer.AsMemory(0, (int)request.Length), fua, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            write = ValueTask.FromException(ex);
        }

        Start(write, request, writeBuffer, started);
    }

    /// <summary>Serves a READ straight into the reply buffer when the device has the data at hand.</summary>
    private async ValueTask<bool> TryReadInlineAsync(NbdRequest request, CancellationToken ct)
    {
        await replies.EnterAsync(ct).ConfigureAwait(false);
        try
        {
            var prefix = replies.ReadPrefixSize;
            var length = (int)request.Length;
            if (length == 0)
            {
                replies.WriteOk(request);
            }
            else
            {
                var span = replies.GetSpan(prefix + length);
                bool done;
                try
                {
                    done = device.TryRead((long)request.Offset, span.Slice(prefix, length));
                }
                catch (BlockDeviceException ex)
                {
                    replies.WriteError(request, MapError(request, ex));
                    return true;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    replies.WriteError(request, Unexpected(request, ex));
                    return true;
                }

                if (!done)
                {
                    return false;
                }

                replies.WriteReadPrefix(request, span);
                replies.Advance(prefix + length);
            }

            await replies.FlushIfFullAsync(ct).ConfigureAwait(false);
            return true;
        }
        finally
        {
            replies.Exit();
        }
    }

    private bool TryWriteInline(in NbdRequest request, in ReadOnlySequence<byte> payload, bool fua, out NbdError error)
    {
        var offset = (long)request.Offset;
        error = NbdError.None;
        try
        {
            if (payload.IsSingleSegment)
            {
                return device.TryWrite(offset, payload.FirstSpan, fua);
            }

            // Split across receive segments (at any byte, not at a page): joined first, so the device sees one write
            // of whole pages rather than two with part pages at the seam, which it would have to complete from disk.
            var joined = buffers.Rent((int)payload.Length);
            try
            {
                payload.CopyTo(joined);
                return device.TryWrite(offset, joined.AsSpan(0, (int)payload.Length), fua);
            }
            finally
            {
                buffers.Return(joined);
            }
        }
        catch (BlockDeviceException ex)
        {
            error = MapError(request, ex);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            error = Unexpected(request, ex);
            return true;
        }
    }

    /// <summary>Replies at once if the operation finished synchronously, otherwise when it does.</summary>
    private async ValueTask CompleteAsync(ValueTask operation, NbdRequest request, long started, CancellationToken ct)
    {
        if (!operation.IsCompleted)
        {
            Start(operation, request, null, started);
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
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            error = Unexpected(request, ex);
        }

        await replies.ReplyAsync(request, error, ct).ConfigureAwait(false);
        metrics.Answered(request.Command, started);
    }

    private void Start(ValueTask operation, NbdRequest request, byte[]? buffer, long started)
    {
        budget.Begin(request.Length, buffer?.Length ?? 0);
        _ = FinishAsync(operation, request, buffer, started);
    }

    // Nobody awaits it (Detached: its box is reused, no allocation once warm); it catches everything.
    private async Detached FinishAsync(ValueTask operation, NbdRequest request, byte[]? buffer, long started)
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
        catch (Exception ex)
        {
            error = Unexpected(request, ex);
        }

        try
        {
            await replies.EnterAsync(aborted).ConfigureAwait(false);
            try
            {
                if (error == NbdError.None && request.Command == NbdCommand.Read && buffer is not null)
                {
                    await replies.SendReadAsync(request, buffer.AsMemory(0, (int)request.Length), aborted).ConfigureAwait(false);
                }
                else
                {
                    replies.WriteStatus(request, error);
                    await replies.FlushAsync(aborted).ConfigureAwait(false);
                }
            }
            finally
            {
                replies.Exit();
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            abort();
        }
        finally
        {
            if (buffer is not null)
            {
                budget.ReleaseBuffer(buffer.Length);
                buffers.Return(buffer);
            }

            budget.End(request.Length);
            metrics.Answered(request.Command, started);
        }
    }

    /// <summary>
    /// Anything but a <see cref="BlockDeviceException"/> from the device is a bug below it; the request is still
    /// answered (EIO) and its buffer and budget released, rather than left waiting forever with the kernel behind it.
    /// </summary>
    private NbdError Unexpected(in NbdRequest request, Exception ex)
    {
        ConnectionLog.RequestFailed(logger, ex, connectionId, request.Command.ToString(), request.Offset, request.Length);
        return NbdError.Io;
    }

    private NbdError MapError(in NbdRequest request, BlockDeviceException ex)
    {
        ConnectionLog.DeviceError(logger, connectionId, request.Command.ToString(), request.Offset, request.Length, ex.Message);
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
}
