using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>
/// The receive half of a connection: reads the socket, cuts the bytes into simple replies and structured reply chunks
/// for <see cref="ReplyMatcher"/>, and copies READ data straight into the caller's buffer as it arrives, over as many
/// reads as it takes.
/// </summary>
internal sealed class ReplyReceiver
{
    /// <summary>Chunks other than OFFSET_DATA are buffered whole; 2^20 extents (the spec's SHOULD limit) fit.</summary>
    private const int MaxBufferedChunk = (8 << 20) + 64;

    private readonly PipeReader _input;
    private readonly ReplyMatcher _matcher;

    // READ data that arrives over several socket reads: whose it is, where the next byte goes, how many are still due.
    private PendingRequest? _dataTarget;
    private int _dataOffset;
    private int _dataRemaining;
    private bool _dataCompletes;

    public ReplyReceiver(PipeReader input, ReplyMatcher matcher)
    {
        _input = input;
        _matcher = matcher;
    }

    /// <summary>Runs until the server closes the connection or the read is cancelled; returns why it failed, or null for a clean end.</summary>
    public async Task<Exception?> RunAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    Process(ref buffer);
                }
                finally
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCanceled)
                {
                    break;
                }

                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty || _dataRemaining > 0)
                    {
                        error = new NbdConnectionClosedException("server closed the connection in the middle of a reply");
                    }

                    break;
                }
            }
        }
        catch (NbdProtocolException ex)
        {
            error = ex;
        }
        catch (Exception ex)
        {
            error = new NbdConnectionClosedException($"receiving from the server failed: {ex.Message}", ex);
        }

        // The request is failed with the rest of the table; do not keep its buffer alive.
        _dataTarget = null;
        _dataRemaining = 0;
        return error;
    }

    private void Process(ref ReadOnlySequence<byte> buffer)
    {
        Span<byte> head = stackalloc byte[NbdStructuredReply.OffsetDataPrefixSize];
        while (true)
        {
            if (_dataRemaining > 0)
            {
                var n = (int)Math.Min(_dataRemaining, buffer.Length);
                if (n == 0)
                {
                    return;
                }

                buffer.Slice(0, n).CopyTo(_dataTarget!.Destination.Span.Slice(_dataOffset, n));
                buffer = buffer.Slice(n);
                _dataOffset += n;
                _dataRemaining -= n;
                if (_dataRemaining > 0)
                {
                    return;
                }

                var target = _dataTarget;
                _dataTarget = null;
                if (_dataCompletes)
                {
                    _matcher.Finish(target);
                }

                continue;
            }

            if (buffer.Length < 4)
            {
                return;
            }

            buffer.Slice(0, 4).CopyTo(head);
            var magic = BinaryPrimitives.ReadUInt32BigEndian(head);
            if (magic == NbdMagic.SimpleReply)
            {
                if (buffer.Length < NbdSimpleReply.Size)
                {
                    return;
                }

                buffer.Slice(0, NbdSimpleReply.Size).CopyTo(head);
                buffer = buffer.Slice(NbdSimpleReply.Size);
                if (_matcher.OnSimpleReply(NbdSimpleReply.Read(head), out var data))
                {
                    StartData(data);
                }
            }
            else if (magic == NbdMagic.StructuredReply)
            {
                if (buffer.Length < NbdStructuredReply.Size)
                {
                    return;
                }

                buffer.Slice(0, NbdStructuredReply.Size).CopyTo(head);
                var chunk = NbdStructuredReply.Read(head);
                if (chunk.Type == NbdReplyChunkType.OffsetData)
                {
                    // Only the offset is needed up front; the data is copied as it arrives.
                    if (chunk.Length < 9)
                    {
                        NbdProtocolException.Throw($"OFFSET_DATA chunk of {chunk.Length} bytes");
                    }

                    if (buffer.Length < NbdStructuredReply.OffsetDataPrefixSize)
                    {
                        return;
                    }

                    buffer.Slice(0, NbdStructuredReply.OffsetDataPrefixSize).CopyTo(head);
                    buffer = buffer.Slice(NbdStructuredReply.OffsetDataPrefixSize);
                    StartData(_matcher.OnOffsetData(chunk, BinaryPrimitives.ReadUInt64BigEndian(head[NbdStructuredReply.Size..])));
                }
                else
                {
                    if (chunk.Length > MaxBufferedChunk)
                    {
                        NbdProtocolException.Throw($"{chunk.Type} chunk of {chunk.Length} bytes");
                    }

                    if (buffer.Length < NbdStructuredReply.Size + chunk.Length)
                    {
                        return;
                    }

                    var payload = buffer.Slice(NbdStructuredReply.Size, chunk.Length);
                    _matcher.OnChunk(chunk, payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray());
                    buffer = buffer.Slice(NbdStructuredReply.Size + chunk.Length);
                }
            }
            else
            {
                NbdProtocolException.Throw($"reply with bad magic 0x{magic:x8}");
            }
        }
    }

    private void StartData(in ReadData data)
    {
        _dataTarget = data.Request;
        _dataOffset = data.At;
        _dataRemaining = data.Length;
        _dataCompletes = data.Completes;
    }
}
