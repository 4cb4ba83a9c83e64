using System.Runtime.InteropServices;

namespace Swap.Nbd.Client.Netlink;

/// <summary>
/// A generic netlink socket (AF_NETLINK, NETLINK_GENERIC): requests answered by replies and an ACK matched by sequence
/// number, NLMSG_ERROR turned into a <see cref="NetlinkErrorException"/>, and multicast notices for joined groups.
/// Blocking calls: the kernel answers at once, and the persist loop reads notices on its own thread.
/// </summary>
public sealed class NetlinkSocket : IDisposable
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);
    private readonly byte[] _send = new byte[4096];
    private readonly byte[] _receive = new byte[64 * 1024];
    private readonly Lock _requestLock = new();
    private int _fd;
    private uint _sequence;

    private NetlinkSocket(int fd)
    {
        _fd = fd;
        _sequence = (uint)Environment.TickCount;
    }

    /// <summary>Opens and binds a NETLINK_GENERIC socket (the kernel assigns the port id).</summary>
    public static unsafe NetlinkSocket OpenGeneric()
    {
        var fd = NetlinkNative.socket(Netlink.AddressFamily, NetlinkNative.SockRaw | NetlinkNative.SockCloexec, Netlink.ProtocolGeneric);
        if (fd < 0)
        {
            throw Failure("socket(AF_NETLINK, NETLINK_GENERIC)", Marshal.GetLastPInvokeError());
        }

        var address = new NetlinkNative.SockaddrNl { Family = Netlink.AddressFamily };
        if (NetlinkNative.bind(fd, &address, sizeof(NetlinkNative.SockaddrNl)) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            NetlinkNative.close(fd);
            throw Failure("bind(AF_NETLINK)", errno);
        }

        return new NetlinkSocket(fd);
    }

    /// <summary>Resolves a generic netlink family by name (CTRL_CMD_GETFAMILY).</summary>
    public GenericFamily GetFamily(string name)
    {
        GenericFamily? family = null;
        try
        {
            Request($"family lookup of '{name}'", (buffer, sequence) => NbdNetlinkCodec.WriteGetFamily(buffer, sequence, name),
                message => family = NbdNetlinkCodec.ReadFamily(message));
        }
        catch (NetlinkErrorException ex) when (ex.Errno == 2)
        {
            throw new NetlinkErrorException(2, name == NbdGenl.FamilyName
                ? "this kernel has no nbd netlink family: modprobe nbd"
                : $"this kernel has no generic netlink family '{name}'");
        }

        return family ?? throw new NetlinkProtocolException($"the controller acknowledged the lookup of '{name}' without describing it");
    }

    /// <summary>Joins a multicast group (NETLINK_ADD_MEMBERSHIP) so its notices arrive on <see cref="TryReceiveNotice"/>.</summary>
    public unsafe void JoinGroup(uint group)
    {
        if (NetlinkNative.setsockopt(Fd, NetlinkNative.SolNetlink, NetlinkNative.NetlinkAddMembership, &group, sizeof(uint)) < 0)
        {
            throw Failure($"joining netlink multicast group {group}", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>
    /// Sends one request (with NLM_F_ACK) and hands every reply with its sequence number to <paramref name="onReply"/>
    /// until the ACK; an error reply throws <see cref="NetlinkErrorException"/> naming <paramref name="what"/>.
    /// </summary>
    public void Request(string what, NetlinkRequestWriter write, NetlinkReplyHandler? onReply = null)
    {
        ArgumentNullException.ThrowIfNull(write);
        lock (_requestLock)
        {
            RequestLocked(what, write, onReply);
        }
    }

    private unsafe void RequestLocked(string what, NetlinkRequestWriter write, NetlinkReplyHandler? onReply)
    {
        var sequence = ++_sequence;
        var length = write(_send, sequence);
        fixed (byte* p = _send)
        {
            while (NetlinkNative.send(Fd, p, length, 0) < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != NetlinkNative.EIntr)
                {
                    throw Failure($"sending the {what} request", errno);
                }
            }
        }

        var deadline = Environment.TickCount64 + (long)ReplyTimeout.TotalMilliseconds;
        while (true)
        {
            var wait = (int)Math.Max(0, deadline - Environment.TickCount64);
            var received = Receive(wait);
            if (received < 0)
            {
                throw new TimeoutException($"the kernel did not answer the {what} request within {ReplyTimeout.TotalSeconds:0} s");
            }

            ReadOnlySpan<byte> datagram = _receive.AsSpan(0, received);
            while (NetlinkMessage.TryRead(ref datagram, out var message))
            {
                if (message.Sequence != sequence)
                {
                    continue;
                }

                switch (message.Type)
                {
                    case Netlink.TypeError:
                        var error = message.ErrorCode();
                        if (error == 0)
                        {
                            return;
                        }

                        throw new NetlinkErrorException(error, Explain(what, error));
                    case Netlink.TypeDone:
                        return;
                    case Netlink.TypeNoop:
                        break;
                    default:
                        onReply?.Invoke(message);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for one datagram of multicast notices and hands each message to
    /// <paramref name="onNotice"/>. False on timeout. A receive-queue overrun (ENOBUFS: notices were lost) throws
    /// <see cref="NetlinkErrorException"/> with errno 105, so the caller can assume the worst.
    /// </summary>
    public bool TryReceiveNotice(TimeSpan timeout, NetlinkReplyHandler onNotice)
    {
        ArgumentNullException.ThrowIfNull(onNotice);
        var received = Receive((int)timeout.TotalMilliseconds);
        if (received < 0)
        {
            return false;
        }

        ReadOnlySpan<byte> datagram = _receive.AsSpan(0, received);
        while (NetlinkMessage.TryRead(ref datagram, out var message))
        {
            if (message.Type >= Netlink.TypeGenericController)
            {
                onNotice(message);
            }
        }

        return true;
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            NetlinkNative.close(fd);
        }
    }

    private int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(NetlinkSocket));

    /// <summary>One datagram into the receive buffer; -1 when nothing arrived within the timeout.</summary>
    private unsafe int Receive(int timeoutMilliseconds)
    {
        var pollFd = new NetlinkNative.PollFd { Fd = Fd, Events = NetlinkNative.PollIn };
        var ready = NetlinkNative.poll(&pollFd, 1, timeoutMilliseconds);
        if (ready < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno == NetlinkNative.EIntr ? -1 : throw Failure("poll on the netlink socket", errno);
        }

        if (ready == 0)
        {
            return -1;
        }

        fixed (byte* p = _receive)
        {
            var n = NetlinkNative.recv(Fd, p, _receive.Length, 0);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == NetlinkNative.EIntr)
                {
                    return -1;
                }

                throw errno == NetlinkNative.ENoBufs
                    ? new NetlinkErrorException(errno, "netlink receive queue overrun: notices were lost")
                    : Failure("receiving from the netlink socket", errno);
            }

            return (int)n;
        }
    }

    private static string Explain(string what, int errno) => errno switch
    {
        1 => $"{what}: operation not permitted (EPERM): the nbd netlink family needs root (CAP_SYS_ADMIN)",
        _ => $"{what} failed: {NetlinkNative.Describe(errno)}",
    };

    private static NetlinkErrorException Failure(string what, int errno) => new(errno, Explain(what, errno));
}
