using System.Net.Sockets;
using Swap.Common.Buffers;
using Swap.Common.Sockets;
using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// The sending half of a <see cref="DaemonLink"/>: encodes request frames into one pinned send buffer and sends them
/// from the caller's thread under a lock (blocking sends, so the socket stays in blocking mode). Small WRITE frames
/// may wait in the buffer and leave with the next frame; large payloads are gathered behind their header by writev.
/// Send failures are thrown (<see cref="SocketException"/>, <see cref="ObjectDisposedException"/>) for the link to fail itself.
/// </summary>
internal sealed class FrameSender(Socket socket)
{
    /// <summary>Deferred WRITE frames are held until this many bytes wait, or the next other request, or the watchdog's tick.</summary>
    public const int DeferLimit = 32 * 1024;

    private const int SendBufferSize = 64 * 1024;

    /// <summary>Payloads up to this size are copied behind their header; larger ones are gathered by writev.</summary>
    private const int GatherThreshold = 16 * 1024;

    private readonly Lock _sendLock = new();
    private readonly byte[] _sendBuffer = PageTouch.Touched(GC.AllocateArray<byte>(SendBufferSize, pinned: true));

    /// <summary>Bytes of deferred frames at the start of the send buffer, not sent yet (under the send lock).</summary>
    private int _deferred;

    /// <summary>Bytes of deferred frames waiting in the send buffer (read without the lock: a test's view).</summary>
    public int DeferredBytes => Volatile.Read(ref _deferred);

    /// <summary>
    /// Sends one request frame, behind the frames deferred so far; <paramref name="payload"/> is copied or on the wire
    /// (or in the socket buffer) when this returns. With <paramref name="defer"/> a small frame may stay in the buffer.
    /// <paramref name="queued"/> is told once the frame has its place in the order, before any byte of it is sent.
    /// </summary>
    public void Send(DaemonOpcode opcode, ulong requestId, in DaemonRequestBody body, ReadOnlySpan<byte> payload, bool defer, IQueuedWrite? queued = null)
    {
        var bodyLength = DaemonRequestBody.Length(opcode);
        lock (_sendLock)
        {
            // Behind the frames deferred so far, which leave with this one: one send, one wake-up of the daemon.
            var start = _deferred;
            var frame = _sendBuffer.AsSpan(start);
            DaemonFrameHeader.For(opcode, DaemonStatus.Ok, requestId, bodyLength + payload.Length).Write(frame);
            body.Write(opcode, frame[DaemonFrameHeader.Size..]);
            var used = start + DaemonFrameHeader.Size + bodyLength;
            queued?.InFifo();
            if (payload.Length <= GatherThreshold)
            {
                payload.CopyTo(_sendBuffer.AsSpan(used));
                used += payload.Length;
                if (defer && used < DeferLimit)
                {
                    _deferred = used;
                    return;
                }

                _deferred = 0;
                SocketGather.SendAll(socket, _sendBuffer.AsSpan(0, used));
            }
            else
            {
                _deferred = 0;
                SocketGather.SendAll(socket, _sendBuffer.AsSpan(0, used), payload);
            }
        }
    }

    /// <summary>Sends the deferred frames now, if any wait.</summary>
    public void SendDeferred()
    {
        lock (_sendLock)
        {
            if (_deferred > 0)
            {
                var length = _deferred;
                _deferred = 0;
                SocketGather.SendAll(socket, _sendBuffer.AsSpan(0, length));
            }
        }
    }
}
