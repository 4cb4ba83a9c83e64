using Swap.BlockDevices;
using Swap.Daemon.Protocol;
using Swap.Donor.Transport;

namespace Swap.Donor.Connections;

/// <summary>
/// The one writer of a connection: replies collect in an output buffer under a send lock and go out in one system
/// call when the receive thread runs out of input (or the buffer fills), so a burst of requests costs a few sends, not
/// one per reply. EVICTED notices from other threads go through the same lock and buffer.
/// </summary>
internal sealed class DonorReplyBatcher(IDonorTransport transport)
{
    private readonly byte[] _output = GC.AllocateUninitializedArray<byte>(DonorConnection.BufferSize, pinned: true);
    private readonly Lock _sendLock = new();
    private int _outputLength;

    /// <summary>Adds a whole frame to the replies waiting to be sent.</summary>
    public void Queue(ReadOnlySpan<byte> frame)
    {
        lock (_sendLock)
        {
            QueueLocked(frame);
        }
    }

    /// <summary>Sends a frame now, with whatever replies are waiting before it.</summary>
    public void SendNow(ReadOnlySpan<byte> frame)
    {
        lock (_sendLock)
        {
            QueueLocked(frame);
            FlushLocked();
        }
    }

    /// <summary>
    /// Adds an OK READ reply whose data is copied from <paramref name="device"/> straight into the output buffer (one
    /// copy); a read larger than the buffer goes out at once in buffer-sized pieces.
    /// </summary>
    public void QueueRead(ulong requestId, SparseMemoryDevice device, long offset, int length)
    {
        const int BufferSize = DonorConnection.BufferSize;
        lock (_sendLock)
        {
            if (DaemonFrameHeader.Size + length > BufferSize - _outputLength)
            {
                FlushLocked();
            }

            if (DaemonFrameHeader.Size + length <= BufferSize)
            {
                // The usual case: header and data join the replies waiting in the output buffer.
                var frame = _output.AsSpan(_outputLength, DaemonFrameHeader.Size + length);
                DaemonFrameHeader.For(DaemonOpcode.Read, DaemonStatus.Ok, requestId, length).Write(frame);
                device.TryRead(offset, frame[DaemonFrameHeader.Size..]);
                _outputLength += frame.Length;
                return;
            }

            // Larger reads go out in buffer-sized pieces.
            DaemonFrameHeader.For(DaemonOpcode.Read, DaemonStatus.Ok, requestId, length).Write(_output);
            var remaining = length;
            var start = DaemonFrameHeader.Size;
            do
            {
                var n = Math.Min(remaining, BufferSize - start);
                device.TryRead(offset, _output.AsSpan(start, n));
                SendAll(_output.AsSpan(0, start + n));
                offset += n;
                remaining -= n;
                start = 0;
            }
            while (remaining > 0);
        }
    }

    /// <summary>Sends the replies waiting, if any; the receive thread calls this before it blocks for input.</summary>
    public void Flush()
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

    /// <summary>Adds a frame to the output buffer (sending what is there first if it would not fit); the caller holds the send lock.</summary>
    private void QueueLocked(ReadOnlySpan<byte> frame)
    {
        if (frame.Length > DonorConnection.BufferSize - _outputLength)
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

    /// <summary>Sends all of <paramref name="data"/>; the caller holds the send lock.</summary>
    private void SendAll(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var n = transport.Send(data);
            data = data[n..];
        }
    }
}
