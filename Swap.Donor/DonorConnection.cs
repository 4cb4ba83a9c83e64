using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Swap.BlockDevices;
using Swap.Daemon.Protocol;

namespace Swap.Donor;

/// <summary>
/// One server connection to the donor: a blocking receive thread that parses frames with the wire codecs and answers
/// each request in order (memory operations do not block), and one send lock that serializes replies with the
/// EVICTED notices other threads send. Input is read into a buffer, many frames a system call when the server
/// pipelines; replies collect in an output buffer that is sent whenever the thread runs out of input (or the buffer
/// fills), so a burst of requests costs a few system calls, not several per request. Large WRITE payloads are
/// received straight into slab memory. Nothing is allocated per request.
/// </summary>
internal sealed class DonorConnection
{
    private const int BufferSize = 256 * 1024;
    private const int ReplyBody = DaemonFrameHeader.Size; // replies are built at this offset in the buffer

    private readonly DonorDaemon _daemon;
    private readonly Socket _socket;
    private readonly ILogger _logger;
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
    private readonly byte[] _input = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
    private readonly byte[] _output = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
    private int _inputStart;
    private int _inputEnd;
    private int _outputLength;
    private readonly Lock _sendLock = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closed;
    private ITimer? _helloTimer;

    public DonorConnection(long id, Socket socket, DonorDaemon daemon, ILogger logger)
    {
        Id = id;
        _socket = socket;
        _daemon = daemon;
        _logger = logger;
        _helloTimer = daemon.StartHelloTimer(this);
    }

    public long Id { get; }

    /// <summary>Set by a successful HELLO.</summary>
    public DonorClient? Client { get; set; }

    public Task Completion => _done.Task;

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public void Start()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = $"donor-conn-{Id}" };
        thread.Start();
    }

    /// <summary>Closes the socket; the receive thread ends and the daemon is told.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _helloTimer?.Dispose();

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        _socket.Dispose();
    }

    /// <summary>Sends an EVICTED notice (request id 0); called off the receive thread, failures only mean the connection is gone.</summary>
    public void SendEvicted(uint slabId, uint epoch)
    {
        Span<byte> frame = stackalloc byte[DaemonFrameHeader.Size + SlabRange.SlabOnlySize];
        DaemonFrameHeader.For(DaemonOpcode.Evicted, DaemonStatus.Ok, 0, SlabRange.SlabOnlySize).Write(frame);
        new SlabRange(slabId, epoch, 0, 0).WriteSlabOnly(frame[DaemonFrameHeader.Size..]);
        try
        {
            lock (_sendLock)
            {
                QueueLocked(frame);
                FlushLocked();
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            Close();
        }
    }

    /// <summary>The HELLO timer fired: closes the connection if it still speaks for no client.</summary>
    internal void HelloTimedOut()
    {
        if (Client is null && !IsClosed)
        {
            DonorLog.NoHello(_logger, Id, _daemon.HelloTimeout);
            Close();
        }
    }

    private void Run()
    {
        try
        {
            while (!IsClosed && ServeOne())
            {
            }
        }
        catch (DaemonProtocolException ex)
        {
            DonorLog.ProtocolViolation(_logger, Id, ex.Message);
        }
        catch (EndOfStreamException)
        {
            if (!IsClosed)
            {
                DonorLog.ProtocolViolation(_logger, Id, "connection closed in the middle of a frame");
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The peer went away or the daemon closed us.
        }
        catch (Exception ex)
        {
            DonorLog.ConnectionFailed(_logger, ex, Id);
        }
        finally
        {
            Close();
            _daemon.OnConnectionClosed(this);
            DonorLog.Closed(_logger, Id);
            _done.TrySetResult();
        }
    }

    /// <summary>Reads and answers one request; false at a clean end of stream.</summary>
    private bool ServeOne()
    {
        if (!Receive(_buffer.AsSpan(0, DaemonFrameHeader.Size), endOfStreamOk: true))
        {
            return false;
        }

        DaemonFrameHeader.TryRead(_buffer, out var header);
        WaitWhileStalled();
        var bodyLength = header.BodyLength;
        if (header.Opcode == DaemonOpcode.Write)
        {
            ServeWrite(header);
            return true;
        }

        var fixedBody = header.Opcode switch
        {
            DaemonOpcode.Hello => DaemonHello.Size,
            DaemonOpcode.QueryFree => SlabQuery.Size,
            DaemonOpcode.AllocSlab => SlabAllocRequest.Size,
            DaemonOpcode.Read or DaemonOpcode.Trim => SlabRange.Size,
            DaemonOpcode.FreeSlab => SlabRange.SlabOnlySize,
            DaemonOpcode.Stats => 0,
            _ => -1,
        };
        if (fixedBody < 0)
        {
            DaemonProtocolException.Throw($"{header.Opcode} is not a request");
        }

        if (bodyLength < fixedBody)
        {
            DaemonProtocolException.Throw($"{header.Opcode} body of {bodyLength} bytes, need {fixedBody}");
        }

        // The body sits right after the header; anything beyond the fixed part is ignored.
        var body = _buffer.AsSpan(DaemonFrameHeader.Size, fixedBody);
        Receive(body, endOfStreamOk: false);
        Skip(bodyLength - fixedBody);

        if (header.Opcode == DaemonOpcode.Hello)
        {
            var hello = DaemonHello.Read(body); // a wrong magic throws: not one of ours, close
            ServeHello(header.RequestId, hello);
            return true;
        }

        if (Client is not { } client)
        {
            Reply(header.Opcode, DaemonStatus.HelloFirst, header.RequestId, 0);
            return true;
        }

        switch (header.Opcode)
        {
            case DaemonOpcode.QueryFree:
            {
                var status = _daemon.QueryFree(client, SlabQuery.Read(body).SlabSize, out var free);
                if (status == DaemonStatus.Ok)
                {
                    DaemonStats.WriteFreeSlabs(_buffer.AsSpan(ReplyBody), free);
                    Reply(header.Opcode, status, header.RequestId, DaemonStats.FreeSlabsSize);
                }
                else
                {
                    Reply(header.Opcode, status, header.RequestId, 0);
                }

                break;
            }

            case DaemonOpcode.AllocSlab:
            {
                var request = SlabAllocRequest.Read(body);
                var status = _daemon.Allocate(client, request, out var grant);
                if (status == DaemonStatus.Ok)
                {
                    grant.Write(_buffer.AsSpan(ReplyBody));
                    Reply(header.Opcode, status, header.RequestId, SlabGrant.Size);
                }
                else
                {
                    Reply(header.Opcode, status, header.RequestId, 0);
                }

                break;
            }

            case DaemonOpcode.Read:
                ServeRead(header.RequestId, SlabRange.Read(body));
                break;

            case DaemonOpcode.Trim:
                ServeTrim(header.RequestId, SlabRange.Read(body));
                break;

            case DaemonOpcode.FreeSlab:
                Reply(header.Opcode, _daemon.FreeSlab(client, SlabRange.ReadSlabOnly(body)), header.RequestId, 0);
                break;

            case DaemonOpcode.Stats:
                _daemon.Stats(client).Write(_buffer.AsSpan(ReplyBody));
                Reply(header.Opcode, DaemonStatus.Ok, header.RequestId, DaemonStats.Size);
                break;
        }

        return true;
    }

    private void ServeHello(ulong requestId, DaemonHello hello)
    {
        if (hello.Version != DaemonFrameHeader.Version)
        {
            Reply(DaemonOpcode.Hello, DaemonStatus.Version, requestId, 0);
            return;
        }

        if ((hello.Flags & ~DaemonHelloFlags.Known) != 0)
        {
            Reply(DaemonOpcode.Hello, DaemonStatus.Invalid, requestId, 0);
            return;
        }

        var status = _daemon.Hello(this, hello.ClientId, (hello.Flags & DaemonHelloFlags.ReleaseSlabs) != 0);
        if (status != DaemonStatus.Ok)
        {
            Reply(DaemonOpcode.Hello, status, requestId, 0);
            return;
        }

        _helloTimer?.Dispose();
        DonorLog.Hello(_logger, Id, hello.ClientId);
        _daemon.Welcome.Write(_buffer.AsSpan(ReplyBody));
        Reply(DaemonOpcode.Hello, DaemonStatus.Ok, requestId, DaemonWelcome.Size);
    }

    private void ServeWrite(DaemonFrameHeader header)
    {
        if (header.BodyLength < SlabRange.Size)
        {
            DaemonProtocolException.Throw($"WRITE body of {header.BodyLength} bytes, need {SlabRange.Size}");
        }

        var rangeBytes = _buffer.AsSpan(DaemonFrameHeader.Size, SlabRange.Size);
        Receive(rangeBytes, endOfStreamOk: false);
        var range = SlabRange.Read(rangeBytes);
        if ((long)header.BodyLength - SlabRange.Size != range.Length)
        {
            DaemonProtocolException.Throw($"WRITE carries {header.BodyLength - SlabRange.Size} bytes but its range says {range.Length}");
        }

        if (Client is null)
        {
            Skip(range.Length);
            Reply(DaemonOpcode.Write, DaemonStatus.HelloFirst, header.RequestId, 0);
            return;
        }

        var status = Resolve(range, out var slab);
        if (status != DaemonStatus.Ok)
        {
            Skip(range.Length);
            Reply(DaemonOpcode.Write, status, header.RequestId, 0);
            return;
        }

        try
        {
            // The payload goes from the socket straight into the slab's memory (one copy), a 2 MiB chunk at a time.
            var offset = (long)range.Offset;
            var remaining = (int)range.Length;
            while (remaining > 0)
            {
                var destination = slab!.Device.WritableSpan(offset, remaining);
                Receive(destination, endOfStreamOk: false);
                offset += destination.Length;
                remaining -= destination.Length;
            }

            // Evicted while the payload was arriving: the server must not count these pages as stored.
            status = slab!.Revoked ? DaemonStatus.Stale : DaemonStatus.Ok;
        }
        catch (BlockDeviceException ex)
        {
            DonorLog.RequestFailed(_logger, ex, Id, nameof(DaemonOpcode.Write));
            status = DaemonStatus.Io;
        }
        finally
        {
            slab!.Release();
        }

        Reply(DaemonOpcode.Write, status, header.RequestId, 0);
    }

    private void ServeRead(ulong requestId, SlabRange range)
    {
        var status = Resolve(range, out var slab);
        if (status == DaemonStatus.Ok && range.Length > DaemonFrameHeader.MaxPayload)
        {
            slab!.Release();
            status = DaemonStatus.Invalid;
        }

        if (status != DaemonStatus.Ok)
        {
            Reply(DaemonOpcode.Read, status, requestId, 0);
            return;
        }

        try
        {
            lock (_sendLock)
            {
                var length = (int)range.Length;
                if (DaemonFrameHeader.Size + length > BufferSize - _outputLength)
                {
                    FlushLocked();
                }

                var offset = (long)range.Offset;
                if (DaemonFrameHeader.Size + length <= BufferSize)
                {
                    // The usual case: header and data join the replies waiting in the output buffer.
                    var frame = _output.AsSpan(_outputLength, DaemonFrameHeader.Size + length);
                    DaemonFrameHeader.For(DaemonOpcode.Read, DaemonStatus.Ok, requestId, length).Write(frame);
                    slab!.Device.TryRead(offset, frame[DaemonFrameHeader.Size..]);
                    _outputLength += frame.Length;
                }
                else
                {
                    // Larger reads go out in buffer-sized pieces.
                    DaemonFrameHeader.For(DaemonOpcode.Read, DaemonStatus.Ok, requestId, length).Write(_output);
                    var remaining = length;
                    var start = DaemonFrameHeader.Size;
                    do
                    {
                        var n = Math.Min(remaining, BufferSize - start);
                        slab!.Device.TryRead(offset, _output.AsSpan(start, n));
                        SendAll(_output.AsSpan(0, start + n));
                        offset += n;
                        remaining -= n;
                        start = 0;
                    }
                    while (remaining > 0);
                }
            }
        }
        finally
        {
            slab!.Release();
        }
    }

    private void ServeTrim(ulong requestId, SlabRange range)
    {
        var status = Resolve(range, out var slab);
        if (status == DaemonStatus.Ok)
        {
            try
            {
                // SparseMemoryDevice trims synchronously: madvise(DONTNEED) on whole pages.
                slab!.Device.Trim((long)range.Offset, range.Length);
            }
            finally
            {
                slab!.Release();
            }
        }

        Reply(DaemonOpcode.Trim, status, requestId, 0);
    }

    /// <summary>Finds the slab a request names and takes a reference on it (OK), or says why not (STALE, INVALID).</summary>
    private DaemonStatus Resolve(SlabRange range, out DonorSlab? slab)
    {
        slab = _daemon.FindSlab(range.SlabId);
        if (slab is null || slab.Epoch != range.Epoch || slab.Owner != Client || !slab.TryAcquire())
        {
            slab = null;
            return DaemonStatus.Stale;
        }

        if (slab.Revoked || !range.FitsIn((ulong)slab.Size))
        {
            var status = slab.Revoked ? DaemonStatus.Stale : DaemonStatus.Invalid;
            slab.Release();
            slab = null;
            return status;
        }

        slab.LastAccess = _daemon.Now();
        return DaemonStatus.Ok;
    }

    /// <summary>Sends a reply whose body (<paramref name="bodyLength"/> bytes) is already in the buffer after the header.</summary>
    private void Reply(DaemonOpcode opcode, DaemonStatus status, ulong requestId, int bodyLength)
    {
        DaemonFrameHeader.For(opcode, status, requestId, bodyLength).Write(_buffer);
        lock (_sendLock)
        {
            QueueLocked(_buffer.AsSpan(0, DaemonFrameHeader.Size + bodyLength));
        }
    }

    /// <summary>Adds a frame to the output buffer (sending what is there first if it would not fit); the caller holds the send lock.</summary>
    private void QueueLocked(ReadOnlySpan<byte> frame)
    {
        if (frame.Length > BufferSize - _outputLength)
        {
            FlushLocked();
        }

        frame.CopyTo(_output.AsSpan(_outputLength));
        _outputLength += frame.Length;
    }

    private void FlushLocked()
    {
        if (_outputLength > 0)
        {
            var length = _outputLength;
            _outputLength = 0;
            SendAll(_output.AsSpan(0, length));
        }
    }

    private void Flush()
    {
        if (Volatile.Read(ref _outputLength) == 0)
        {
            return;
        }

        lock (_sendLock)
        {
            FlushLocked();
        }
    }

    /// <summary>Sends all of <paramref name="data"/>; the caller holds the send lock. The Garbage fault replaces it with random bytes.</summary>
    private void SendAll(Span<byte> data)
    {
        if ((_daemon.Faults & DonorFaults.Garbage) != 0)
        {
            Random.Shared.NextBytes(data);
        }

        while (!data.IsEmpty)
        {
            var n = _socket.Send(data, SocketFlags.None);
            data = data[n..];
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> from the input buffer, refilling it from the socket as needed; what is
    /// large and not yet buffered is received straight into the destination. Before blocking on the socket, the
    /// replies waiting in the output buffer are sent: the server is waiting for them.
    /// </summary>
    private bool Receive(Span<byte> destination, bool endOfStreamOk)
    {
        var first = true;
        while (!destination.IsEmpty)
        {
            var buffered = _inputEnd - _inputStart;
            if (buffered > 0)
            {
                var n = Math.Min(buffered, destination.Length);
                _input.AsSpan(_inputStart, n).CopyTo(destination);
                _inputStart += n;
                destination = destination[n..];
                first = false;
                continue;
            }

            if (_socket.Available == 0)
            {
                Flush();
            }

            int received;
            if (destination.Length >= BufferSize / 4)
            {
                received = _socket.Receive(destination, SocketFlags.None);
                destination = destination[received..];
            }
            else
            {
                _inputStart = 0;
                _inputEnd = received = _socket.Receive(_input, SocketFlags.None);
            }

            if (received == 0)
            {
                if (first && endOfStreamOk)
                {
                    return false;
                }

                throw new EndOfStreamException();
            }

            first = false;
        }

        return true;
    }

    private void Skip(long count)
    {
        while (count > 0)
        {
            var n = (int)Math.Min(count, BufferSize);
            Receive(_buffer.AsSpan(0, n), endOfStreamOk: false);
            count -= n;
        }
    }

    private void WaitWhileStalled()
    {
        // A fault point for tests, not a hot path: polling keeps it simple.
        while ((_daemon.Faults & DonorFaults.Stall) != 0 && !IsClosed)
        {
            Thread.Sleep(10);
        }
    }
}
