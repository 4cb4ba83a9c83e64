using System.Buffers.Binary;
using System.Net.Sockets;
using Swap.Nbd.Protocol;

namespace Swap.Benchmarks.Server;

/// <summary>
/// A minimal pipelined NBD client over a blocking socket: it sends a prepared batch of 4 KiB READs or WRITEs in one
/// send and reads every reply back. Every buffer is allocated up front, so whatever the process allocates while it
/// runs is the server's doing. It negotiates like nbd-client (EXPORT_NAME, so simple replies only).
/// </summary>
internal sealed class PipelinedNbdClient : IDisposable
{
    public const int BlockSize = 4096;
    private const int ReadReplySize = NbdSimpleReply.Size + BlockSize;
    private const int WriteRequestSize = NbdRequest.Size + BlockSize;

    private readonly Socket _socket;
    private readonly int _maxBatch;
    private readonly byte[] _reads;
    private readonly byte[] _writes;
    private readonly byte[] _replies;

    private PipelinedNbdClient(Socket socket, int maxBatch)
    {
        _socket = socket;
        _maxBatch = maxBatch;
        _reads = new byte[maxBatch * NbdRequest.Size];
        _writes = new byte[maxBatch * WriteRequestSize];
        _replies = new byte[maxBatch * ReadReplySize];
        for (var i = 0; i < maxBatch; i++)
        {
            // Pages spread over the filled range, a different one per slot, like scattered swap-ins.
            var offset = (ulong)(i * 7919 % (BenchExport.FilledBytes / BlockSize)) * BlockSize;
            new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)i, offset, BlockSize).Write(_reads.AsSpan(i * NbdRequest.Size));
            new NbdRequest(NbdCommandFlags.None, NbdCommand.Write, (ulong)i, offset, BlockSize).Write(_writes.AsSpan(i * WriteRequestSize));
            _writes.AsSpan((i * WriteRequestSize) + NbdRequest.Size, BlockSize).Fill((byte)i);
        }
    }

    public static PipelinedNbdClient Connect(string socketPath, int maxBatch)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            Span<byte> buffer = stackalloc byte[NbdHandshake.GreetingSize];
            ReceiveExactly(socket, buffer[..NbdHandshake.GreetingSize]);
            NbdHandshake.TryReadGreeting(buffer, out var flags);
            if (!flags.HasFlag(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes))
            {
                throw new InvalidOperationException($"server handshake flags {flags}");
            }

            Span<byte> hello = stackalloc byte[NbdHandshake.ClientFlagsSize + NbdOptionHeader.Size];
            NbdHandshake.WriteClientFlags(hello, NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
            NbdOptionCodec.WriteHeader(hello[NbdHandshake.ClientFlagsSize..], NbdOption.ExportName, 0);
            socket.Send(hello);
            ReceiveExactly(socket, buffer[..NbdHandshake.ExportNameReplySize]);
            NbdHandshake.TryReadExportNameReply(buffer, out var size, out _);
            if ((long)size != BenchExport.DeviceSize)
            {
                throw new InvalidOperationException($"export size {size}");
            }

            return new PipelinedNbdClient(socket, maxBatch);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="count"/> READs at once and waits for all their replies.</summary>
    public void Read(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _maxBatch);
        _socket.Send(_reads.AsSpan(0, count * NbdRequest.Size));
        ReceiveReplies(count, ReadReplySize);
    }

    /// <summary>Sends <paramref name="count"/> WRITEs with their payloads at once and waits for all their replies.</summary>
    public void Write(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _maxBatch);
        _socket.Send(_writes.AsSpan(0, count * WriteRequestSize));
        ReceiveReplies(count, NbdSimpleReply.Size);
    }

    public void Dispose()
    {
        try
        {
            // NBD_CMD_DISC so the server ends the connection cleanly instead of logging a reset.
            Span<byte> disconnect = stackalloc byte[NbdRequest.Size];
            new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0).Write(disconnect);
            _socket.Send(disconnect);
        }
        catch (SocketException)
        {
            // The server is already gone.
        }

        _socket.Dispose();
    }

    private void ReceiveReplies(int count, int replySize)
    {
        var replies = _replies.AsSpan(0, count * replySize);
        ReceiveExactly(_socket, replies);
        // Every reply has the same size, so they sit at a fixed stride whatever order they came in.
        for (var i = 0; i < count; i++)
        {
            var reply = replies.Slice(i * replySize, NbdSimpleReply.Size);
            if (BinaryPrimitives.ReadUInt32BigEndian(reply) != NbdMagic.SimpleReply || NbdSimpleReply.Read(reply).Error != NbdError.None)
            {
                throw new InvalidOperationException($"bad reply {Convert.ToHexString(reply)}");
            }
        }
    }

    private static void ReceiveExactly(Socket socket, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = socket.Receive(destination);
            if (n == 0)
            {
                throw new EndOfStreamException("server closed the connection");
            }

            destination = destination[n..];
        }
    }
}
