using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using Swap.Common.Hosting;

namespace Swap.Nbd.Server.Transport;

/// <summary>
/// Moves bytes between a socket and the connection's pipes with blocking socket calls on a thread of its own,
/// the way nbdkit serves a connection. The protocol code runs inline on that thread as soon as bytes arrive,
/// and replies go out with a blocking send from whichever thread completes them: no thread-pool hop on the path
/// of a request, which is what an NBD client waiting on one request at a time (QD1) feels.
/// </summary>
/// <remarks>
/// Only synchronous socket calls are used: one asynchronous call would switch the socket to non-blocking mode,
/// after which .NET emulates blocking calls through its event loop (a hop again).
/// </remarks>
internal sealed class SocketTransport
{
    /// <summary>
    /// Bytes one receive may take, and the size of the pipes' blocks (<see cref="Hosting.NbdServer"/> makes their
    /// pool): a swap request (4-128 KiB and its header) fits in one; larger ones span blocks.
    /// </summary>
    public const int ReceiveSize = 256 * 1024;

    private readonly Socket _socket;
    private readonly Pipe _input;
    private readonly long _pollMicroseconds;
    private readonly IInputPollGate _pollGate;
    private readonly TaskCompletionSource _received = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="pollMicroseconds">How long to poll for input before a blocking receive; 0 never polls.</param>
    /// <param name="pollGate">Whether the peer is the one to move next (for NBD: every request received so far has
    /// been answered), and the polling slots shared with other connections.</param>
    /// <param name="blocks">Memory for both pipes, blocks of <see cref="ReceiveSize"/>.</param>
    public SocketTransport(Socket socket, int pollMicroseconds, IInputPollGate pollGate, MemoryPool<byte> blocks)
    {
        _socket = socket;
        _pollMicroseconds = pollMicroseconds;
        _pollGate = pollGate;
        // Inline scheduling runs the reader (the protocol loop) on the receiving thread. No pause threshold: the
        // protocol loop consumes every complete request at once and is itself what blocks the receive thread when
        // the client stops reading replies, so the buffered input stays within one request plus one receive.
        _input = new Pipe(new PipeOptions(
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.Inline,
            pool: blocks,
            pauseWriterThreshold: 0,
            resumeWriterThreshold: 0,
            minimumSegmentSize: ReceiveSize,
            useSynchronizationContext: false));
        Output = PipeWriter.Create(new SocketSendStream(socket), new StreamPipeWriterOptions(pool: blocks, minimumBufferSize: ReceiveSize, leaveOpen: true));
    }

    public PipeReader Input => _input.Reader;

    public PipeWriter Output { get; }

    /// <summary>The socket itself, for sends of large replies straight from their buffers (after <see cref="Output"/> is flushed).</summary>
    public Socket Socket => _socket;

    /// <summary>Bytes received by the socket that the transport has not read yet (a system call).</summary>
    public int Available => _socket.Available;

    /// <summary>The managed id of the receiving thread, on which the protocol code runs; 0 before <see cref="Start"/>.</summary>
    public int ThreadId { get; private set; }

    /// <summary>Starts the receiving thread; it ends when the peer closes, the socket fails or the reader completes.</summary>
    public void Start(string name)
    {
        var thread = new Thread(ReceiveLoop) { IsBackground = true, Name = name };
        ThreadId = thread.ManagedThreadId;
        thread.UnsafeStart();
    }

    private void ReceiveLoop()
    {
        StackPrefault.Touch();
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                var memory = writer.GetMemory(ReceiveSize);
                SpinForInput();
                var n = _socket.Receive(memory.Span, SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                writer.Advance(n);
                var flush = writer.FlushAsync();
                var result = flush.IsCompleted ? flush.Result : flush.AsTask().GetAwaiter().GetResult();
                if (result.IsCompleted)
                {
                    Drain();
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            error = ex is InvalidOperationException ? null : ex;
        }

        writer.Complete(error);
        _received.TrySetResult();
    }

    // A client waiting on its previous reply sends the next request within tens of microseconds. Polling briefly
    // before blocking spares the sleep and cross-CPU wake-up, which on a VM costs more than the request itself.
    // Not while a request is still being served elsewhere (a daemon round trip): the client cannot move before its
    // reply, and the spin would take the CPU the daemon and the reply need (a 2-CPU host swapping through daemons ran
    // 56 s with it, 44 s without).
    private void SpinForInput()
    {
        // The cheap tests first: Available is a system call, and while a request is out (a READ waiting on a daemon)
        // it would be made for nothing.
        if (_pollMicroseconds <= 0 || !_pollGate.PeerMovesNext || _socket.Available > 0 || !_pollGate.TryBeginPoll())
        {
            return;
        }

        var deadline = Stopwatch.GetTimestamp() + (_pollMicroseconds * Stopwatch.Frequency / 1_000_000);
        while (_socket.Available == 0 && Stopwatch.GetTimestamp() < deadline)
        {
            Thread.SpinWait(20);
        }

        _pollGate.EndPoll();
    }

    // The protocol is done with this connection but the client may still be sending: read and drop until it
    // closes, because closing a socket with unread input sends a reset, and a reset can destroy replies the client
    // has not read yet.
    private void Drain()
    {
        var scratch = new byte[16 * 1024];
        while (_socket.Receive(scratch, SocketFlags.None) > 0)
        {
        }
    }

    /// <summary>Shuts the socket down both ways at once: pending receives and sends fail.</summary>
    public void Abort()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }
    }

    /// <summary>
    /// Ends the connection after the last reply: stops sending (the client sees end of stream), lets the client's
    /// remaining bytes drain for up to <paramref name="linger"/>, then closes.
    /// </summary>
    public async Task CloseAsync(TimeSpan linger, TimeProvider time)
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
            await _input.Reader.CompleteAsync().ConfigureAwait(false);
            await _received.Task.WaitAsync(linger, time).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or TimeoutException)
        {
            // Gone already, or the client does not hang up: close anyway.
        }

        _socket.Dispose();
    }
}
