using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>
/// The send half of a connection: takes requests from any thread and writes them from one loop in the order they were
/// queued (a WRITE's payload straight after its header), flushing when the queue runs dry.
/// </summary>
internal sealed class RequestSender
{
    // Replies are not waiting on an unflushed request for long: the loop flushes as soon as the queue is empty.
    private const int FlushThreshold = 256 * 1024;

    private static readonly PendingRequest DisconnectMarker = new(null, false) { Command = NbdCommand.Disconnect };

    private readonly PipeWriter _output;
    private readonly PendingRequestTable _table;
    private readonly Channel<PendingRequest> _queue = Channel.CreateUnbounded<PendingRequest>(new UnboundedChannelOptions { SingleReader = true });

    public RequestSender(PipeWriter output, PendingRequestTable table)
    {
        _output = output;
        _table = table;
    }

    /// <summary>Queues a request that is in the table; false only once the queue is completed.</summary>
    public bool TryQueue(PendingRequest request) => _queue.Writer.TryWrite(request);

    /// <summary>NBD_CMD_DISC after everything already queued; nothing is taken after it.</summary>
    public void QueueDisconnect()
    {
        _queue.Writer.TryWrite(DisconnectMarker);
        _queue.Writer.TryComplete();
    }

    /// <summary>Takes nothing more; the loop ends once it has seen the queue empty (or the connection failed).</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Runs until the queue is completed, NBD_CMD_DISC is sent or the table records a failure; returns why sending failed, or null.</summary>
    public async Task<Exception?> RunAsync()
    {
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var request))
                {
                    if (ReferenceEquals(request, DisconnectMarker))
                    {
                        WriteHeader(new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0));
                        await FlushAsync().ConfigureAwait(false);
                        return null;
                    }

                    if (_table.HasFailedUnlocked)
                    {
                        return null;
                    }

                    WriteHeader(new NbdRequest(request.Flags, request.Command, request.Cookie, request.Offset, request.Length));
                    if (request.Command == NbdCommand.Write)
                    {
                        _output.Write(request.Payload.Span);
                    }

                    request.Sent = true;
                    if (_output.UnflushedBytes >= FlushThreshold)
                    {
                        await FlushAsync().ConfigureAwait(false);
                    }
                }

                await FlushAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            return new NbdConnectionClosedException($"sending to the server failed: {ex.Message}", ex);
        }

        return null;
    }

    private void WriteHeader(in NbdRequest header)
    {
        header.Write(_output.GetSpan(NbdRequest.Size));
        _output.Advance(NbdRequest.Size);
    }

    private async ValueTask FlushAsync()
    {
        var result = await _output.FlushAsync().ConfigureAwait(false);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new IOException("the connection stopped accepting data");
        }
    }
}
