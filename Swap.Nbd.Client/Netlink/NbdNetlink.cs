namespace Swap.Nbd.Client.Netlink;

/// <summary>The kernel's nbd netlink family over a <see cref="NetlinkSocket"/>: CONNECT, RECONFIGURE, DISCONNECT, STATUS.</summary>
public sealed class NbdNetlink : IDisposable
{
    private readonly NetlinkSocket _socket;

    private NbdNetlink(NetlinkSocket socket, GenericFamily family)
    {
        _socket = socket;
        Family = family;
    }

    public GenericFamily Family { get; }

    /// <summary>Opens a socket and resolves the "nbd" family (a clear error if the module is not loaded).</summary>
    public static NbdNetlink Open()
    {
        var socket = NetlinkSocket.OpenGeneric();
        try
        {
            return new NbdNetlink(socket, socket.GetFamily(NbdGenl.FamilyName));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>NBD_CMD_CONNECT; returns the device index the kernel bound.</summary>
    public uint Connect(NbdNetlinkConnect connect)
    {
        uint? index = null;
        _socket.Request("NBD_CMD_CONNECT", (buffer, sequence) => NbdNetlinkCodec.WriteConnect(buffer, Family.Id, sequence, connect),
            message => index = NbdNetlinkCodec.ReadIndex(message));
        return index ?? throw new NetlinkProtocolException("NBD_CMD_CONNECT was acknowledged without a device index");
    }

    public void Reconfigure(NbdNetlinkReconfigure reconfigure) =>
        _socket.Request("NBD_CMD_RECONFIGURE", (buffer, sequence) => NbdNetlinkCodec.WriteReconfigure(buffer, Family.Id, sequence, reconfigure));

    public void Disconnect(uint index) =>
        _socket.Request("NBD_CMD_DISCONNECT", (buffer, sequence) => NbdNetlinkCodec.WriteDisconnect(buffer, Family.Id, sequence, index));

    /// <summary>NBD_CMD_STATUS for one device or (null) every device.</summary>
    public IReadOnlyList<NbdDeviceStatus> Status(uint? index)
    {
        var devices = new List<NbdDeviceStatus>();
        _socket.Request("NBD_CMD_STATUS", (buffer, sequence) => NbdNetlinkCodec.WriteStatus(buffer, Family.Id, sequence, index),
            message => devices.AddRange(NbdNetlinkCodec.ReadStatus(message)));
        return devices;
    }

    /// <summary>A second socket joined to "nbd_mc_group", for LINK_DEAD notices.</summary>
    public NetlinkSocket Subscribe()
    {
        if (!Family.MulticastGroups.TryGetValue(NbdGenl.MulticastGroup, out var group))
        {
            throw new NetlinkProtocolException($"the nbd family has no multicast group '{NbdGenl.MulticastGroup}'");
        }

        var socket = NetlinkSocket.OpenGeneric();
        try
        {
            socket.JoinGroup(group);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => _socket.Dispose();
}
