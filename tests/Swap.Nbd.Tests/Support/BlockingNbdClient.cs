using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A TCP connection to an NBD server made with blocking calls only and taken to the transmission phase with
/// NBD_OPT_EXPORT_NAME (the default export). No asynchronous call ever touches the socket, so its later sends and
/// receives are plain system calls that allocate nothing (allocation tests drive load with it).
/// </summary>
internal static class BlockingNbdClient
{
    private const int GreetingSize = 18;
    private const int ExportReplySize = 10;

    public static Socket Connect(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Connect(new IPEndPoint(IPAddress.Loopback, port));
            var greeting = new byte[GreetingSize];
            ReceiveExactly(socket, greeting);
            if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != NbdMagic.InitPasswd || BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)) != NbdMagic.IHaveOpt)
            {
                throw new InvalidOperationException("not a newstyle NBD greeting");
            }

            var option = new byte[4 + 16];
            BinaryPrimitives.WriteUInt32BigEndian(option, (uint)(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes));
            BinaryPrimitives.WriteUInt64BigEndian(option.AsSpan(4), NbdMagic.IHaveOpt);
            BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(12), (uint)NbdOption.ExportName);
            BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(16), 0);
            socket.Send(option);
            ReceiveExactly(socket, new byte[ExportReplySize]);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Fills <paramref name="buffer"/> from the socket with blocking receives; throws if the server closes first.</summary>
    public static void ReceiveExactly(Socket socket, Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = socket.Receive(buffer);
            if (n == 0)
            {
                throw new IOException("the server closed the connection");
            }

            buffer = buffer[n..];
        }
    }
}
