using System.Buffers;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

public sealed partial class NbdClientConnection
{
    // Replies are not waiting on an unflushed request for long: the loop flushes as soon as the queue is empty.
    private const int FlushThreshold = 256 * 1024;

    private static readonly PendingRequest DisconnectMarker = new(null, false) { Command = NbdCommand.Disconnect };

    private async Task SendLoopAsync()
    {
        var reader = _requests.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var request))
                {
                    if (ReferenceEquals(request, DisconnectMarker))
                    {
                        WriteHeader(new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0));
                        await FlushOutputAsync().ConfigureAwait(false);
                        return;
                    }

                    if (Volatile.Read(ref _failure) is not null)
                    {
                        return;
                    }

                    WriteHeader(new NbdRequest(request.Flags, request.Command, request.Cookie, request.Offset, request.Length));
                    if (request.Command == NbdCommand.Write)
                    {
                        _output.Write(request.Payload.Span);
                    }

                    request.Sent = true;
                    if (_output.UnflushedBytes >= FlushThreshold)
                    {
                        await FlushOutputAsync().ConfigureAwait(false);
                    }
                }

                await FlushOutputAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            Abort(new NbdConnectionClosedException($"sending to the server failed: {ex.Message}", ex));
        }
    }

    private void WriteHeader(in NbdRequest header)
    {
        header.Write(_output.GetSpan(NbdRequest.Size));
        _output.Advance(NbdRequest.Size);
    }

    private async ValueTask FlushOutputAsync()
    {
        var result = await _output.FlushAsync().ConfigureAwait(false);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new IOException("the connection stopped accepting data");
        }
    }
}
