namespace Swap.Nbd.Client.Netlink;

/// <summary>
/// The messages swapnbd-client exchanges with the kernel: family lookup through the controller, and the nbd family's
/// CONNECT, RECONFIGURE, DISCONNECT and STATUS requests and replies. Pure: bytes in, bytes out.
/// </summary>
public static class NbdNetlinkCodec
{
    /// <summary>CTRL_CMD_GETFAMILY for <paramref name="name"/>, with an ACK requested.</summary>
    public static int WriteGetFamily(Span<byte> buffer, uint sequence, string name)
    {
        var writer = new NetlinkWriter(buffer);
        writer.BeginMessage(Netlink.TypeGenericController, NetlinkFlags.Request | NetlinkFlags.Ack, sequence);
        writer.GenericHeader(GenericController.CommandGetFamily, GenericController.Version);
        writer.Text(GenericController.AttributeFamilyName, name);
        return writer.EndMessage();
    }

    public static int WriteConnect(Span<byte> buffer, ushort family, uint sequence, NbdNetlinkConnect connect)
    {
        if (connect.Sockets.Count == 0)
        {
            throw new ArgumentException("CONNECT needs at least one socket", nameof(connect));
        }

        var writer = new NetlinkWriter(buffer);
        writer.BeginMessage(family, NetlinkFlags.Request | NetlinkFlags.Ack, sequence);
        writer.GenericHeader(NbdGenl.CommandConnect, NbdGenl.Version);
        if (connect.Index is { } index)
        {
            writer.U32(NbdGenl.AttributeIndex, index);
        }

        writer.U64(NbdGenl.AttributeSizeBytes, connect.SizeBytes);
        writer.U64(NbdGenl.AttributeBlockSizeBytes, connect.BlockSizeBytes);
        writer.U64(NbdGenl.AttributeServerFlags, connect.ServerFlags);
        writer.U64IfSet(NbdGenl.AttributeTimeout, connect.TimeoutSeconds);
        writer.U64IfSet(NbdGenl.AttributeDeadConnectionTimeout, connect.DeadConnectionTimeoutSeconds);
        if (connect.ClientFlags != 0)
        {
            writer.U64(NbdGenl.AttributeClientFlags, connect.ClientFlags);
        }

        writer.TextIfSet(NbdGenl.AttributeBackendIdentifier, connect.BackendIdentifier);
        WriteSockets(ref writer, connect.Sockets);
        return writer.EndMessage();
    }

    public static int WriteReconfigure(Span<byte> buffer, ushort family, uint sequence, NbdNetlinkReconfigure reconfigure)
    {
        var writer = new NetlinkWriter(buffer);
        writer.BeginMessage(family, NetlinkFlags.Request | NetlinkFlags.Ack, sequence);
        writer.GenericHeader(NbdGenl.CommandReconfigure, NbdGenl.Version);
        writer.U32(NbdGenl.AttributeIndex, reconfigure.Index);
        writer.U64IfSet(NbdGenl.AttributeTimeout, reconfigure.TimeoutSeconds);
        writer.U64IfSet(NbdGenl.AttributeDeadConnectionTimeout, reconfigure.DeadConnectionTimeoutSeconds);
        writer.TextIfSet(NbdGenl.AttributeBackendIdentifier, reconfigure.BackendIdentifier);
        if (reconfigure.Sockets.Count > 0)
        {
            WriteSockets(ref writer, reconfigure.Sockets);
        }

        return writer.EndMessage();
    }

    public static int WriteDisconnect(Span<byte> buffer, ushort family, uint sequence, uint index)
    {
        var writer = new NetlinkWriter(buffer);
        writer.BeginMessage(family, NetlinkFlags.Request | NetlinkFlags.Ack, sequence);
        writer.GenericHeader(NbdGenl.CommandDisconnect, NbdGenl.Version);
        writer.U32(NbdGenl.AttributeIndex, index);
        return writer.EndMessage();
    }

    /// <summary>NBD_CMD_STATUS for one device, or for every device when <paramref name="index"/> is null.</summary>
    public static int WriteStatus(Span<byte> buffer, ushort family, uint sequence, uint? index)
    {
        var writer = new NetlinkWriter(buffer);
        writer.BeginMessage(family, NetlinkFlags.Request | NetlinkFlags.Ack, sequence);
        writer.GenericHeader(NbdGenl.CommandStatus, NbdGenl.Version);
        if (index is { } i)
        {
            writer.U32(NbdGenl.AttributeIndex, i);
        }

        return writer.EndMessage();
    }

    /// <summary>The controller's CTRL_CMD_NEWFAMILY reply.</summary>
    public static GenericFamily ReadFamily(NetlinkMessage message)
    {
        if (message.Type != Netlink.TypeGenericController || message.GenericCommand != GenericController.CommandNewFamily)
        {
            throw new NetlinkProtocolException($"expected the controller's family reply, got type {message.Type}");
        }

        string? name = null;
        ushort? id = null;
        uint version = 0;
        var groups = new Dictionary<string, uint>(StringComparer.Ordinal);
        var attributes = message.GenericAttributes;
        while (attributes.TryNext(out var attribute))
        {
            switch (attribute.Type)
            {
                case GenericController.AttributeFamilyId:
                    id = attribute.U16();
                    break;
                case GenericController.AttributeFamilyName:
                    name = attribute.Text();
                    break;
                case GenericController.AttributeVersion:
                    version = attribute.U32();
                    break;
                case GenericController.AttributeMulticastGroups:
                    var list = attribute.Children();
                    while (list.TryNext(out var group))
                    {
                        string? groupName = null;
                        uint? groupId = null;
                        var fields = group.Children();
                        while (fields.TryNext(out var field))
                        {
                            if (field.Type == GenericController.AttributeGroupName)
                            {
                                groupName = field.Text();
                            }
                            else if (field.Type == GenericController.AttributeGroupId)
                            {
                                groupId = field.U32();
                            }
                        }

                        if (groupName is not null && groupId is not null)
                        {
                            groups[groupName] = groupId.Value;
                        }
                    }

                    break;
            }
        }

        if (name is null || id is null)
        {
            throw new NetlinkProtocolException("the family reply has no name or id");
        }

        return new GenericFamily(name, id.Value, version, groups);
    }

    /// <summary>NBD_ATTR_INDEX of a CONNECT reply or a LINK_DEAD notice.</summary>
    public static uint ReadIndex(NetlinkMessage message)
    {
        var attributes = message.GenericAttributes;
        while (attributes.TryNext(out var attribute))
        {
            if (attribute.Type == NbdGenl.AttributeIndex)
            {
                return attribute.U32();
            }
        }

        throw new NetlinkProtocolException($"nbd message (command {message.GenericCommand}) has no device index");
    }

    /// <summary>The devices of an NBD_CMD_STATUS reply.</summary>
    public static IReadOnlyList<NbdDeviceStatus> ReadStatus(NetlinkMessage message)
    {
        var devices = new List<NbdDeviceStatus>();
        var attributes = message.GenericAttributes;
        while (attributes.TryNext(out var attribute))
        {
            if (attribute.Type != NbdGenl.AttributeDeviceList)
            {
                continue;
            }

            var items = attribute.Children();
            while (items.TryNext(out var item))
            {
                if (item.Type != NbdGenl.AttributeDeviceItem)
                {
                    continue;
                }

                uint? index = null;
                var connected = false;
                var fields = item.Children();
                while (fields.TryNext(out var field))
                {
                    if (field.Type == NbdGenl.AttributeDeviceIndex)
                    {
                        index = field.U32();
                    }
                    else if (field.Type == NbdGenl.AttributeDeviceConnected)
                    {
                        connected = field.U8() != 0;
                    }
                }

                devices.Add(new NbdDeviceStatus(index ?? throw new NetlinkProtocolException("a status device item has no index"), connected));
            }
        }

        return devices;
    }

    private static void WriteSockets(ref NetlinkWriter writer, IReadOnlyList<int> sockets)
    {
        var list = writer.BeginNested(NbdGenl.AttributeSockets);
        foreach (var socket in sockets)
        {
            var item = writer.BeginNested(NbdGenl.AttributeSocketItem);
            writer.U32(NbdGenl.AttributeSocketFd, checked((uint)socket));
            writer.EndNested(item);
        }

        writer.EndNested(list);
    }
}
