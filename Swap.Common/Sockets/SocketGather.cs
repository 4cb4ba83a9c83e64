using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Swap.Common.Sockets;

/// <summary>
/// Blocking sends: whole buffers, and one writev for a header and its payload (a daemon link's frame, an NBD READ
/// reply), so a large payload leaves in one system call without first being copied behind its header (.NET's
/// gathering Send takes managed segment lists, and allocates).
/// </summary>
public static unsafe partial class SocketGather
{
    private const int Eintr = 4;

    /// <summary>Sends <paramref name="head"/> then <paramref name="tail"/>, all of both, blocking until done.</summary>
    public static void SendAll(Socket socket, ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail)
    {
        var sent = 0L;
        var handle = socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            fixed (byte* h = head)
            fixed (byte* t = tail)
            {
                var vectors = stackalloc IoVector[2];
                vectors[0] = new IoVector(h, head.Length);
                vectors[1] = new IoVector(t, tail.Length);
                while (true)
                {
                    var n = Writev((int)handle.DangerousGetHandle(), vectors, 2);
                    if (n >= 0)
                    {
                        sent = n;
                        break;
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != Eintr)
                    {
                        // EAGAIN on a socket .NET made non-blocking, or a real error: the managed sends below wait
                        // for room, or throw the SocketException that fails the link.
                        break;
                    }
                }
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        // What writev left (a short write when the send buffer filled): plain sends, which block until it is out.
        if (sent < head.Length)
        {
            SendAll(socket, head[(int)sent..]);
            sent = head.Length;
        }

        SendAll(socket, tail[(int)(sent - head.Length)..]);
    }

    /// <summary>Sends all of <paramref name="data"/>, blocking until it is out.</summary>
    public static void SendAll(Socket socket, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            data = data[socket.Send(data)..];
        }
    }

    [LibraryImport("libc", EntryPoint = "writev", SetLastError = true)]
    private static partial nint Writev(int fd, IoVector* vectors, int count);

    [StructLayout(LayoutKind.Sequential)]
    private readonly struct IoVector(byte* start, int length)
    {
        public readonly byte* Start = start;
        public readonly nuint Length = (nuint)length;
    }
}
