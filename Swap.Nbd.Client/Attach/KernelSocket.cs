using System.Runtime.InteropServices;

namespace Swap.Nbd.Client.Attach;

/// <summary>
/// Handshakes a connection the way the kernel needs it (no structured replies, no meta context: the driver reads only
/// simple replies) and hands its descriptor to the kernel.
/// </summary>
internal static partial class KernelSocket
{
    private const int FGetFl = 3;
    private const int FSetFl = 4;
    private const int ONonBlock = 0x800;

    public static readonly NbdClientOptions Options = new() { StructuredReplies = false, BaseAllocation = false };

    public static Task<NbdNegotiatedSocket> HandshakeAsync(NbdUri uri, CancellationToken ct) =>
        NbdNegotiator.NegotiateAsync(uri, Options, ct);

    /// <summary>The descriptor to pass in NBD_ATTR_SOCKETS, switched back to blocking mode as the driver expects.</summary>
    public static int Descriptor(NbdNegotiatedSocket socket)
    {
        var fd = (int)socket.Socket.SafeHandle.DangerousGetHandle();
        var flags = fcntl(fd, FGetFl, 0);
        if (flags >= 0 && (flags & ONonBlock) != 0)
        {
            fcntl(fd, FSetFl, flags & ~ONonBlock);
        }

        return fd;
    }

    /// <summary>
    /// Drops our descriptor once the kernel holds its own reference. A plain close: disposing the .NET socket could
    /// shut the connection down (it does when an operation is pending), and that would kill the kernel's socket too.
    /// </summary>
    public static void Release(NbdNegotiatedSocket socket)
    {
        var fd = (int)socket.Socket.SafeHandle.DangerousGetHandle();
        socket.Socket.SafeHandle.SetHandleAsInvalid();
        close(fd);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
