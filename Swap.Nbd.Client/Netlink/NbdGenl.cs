namespace Swap.Nbd.Client.Netlink;

/// <summary>The kernel's generic netlink family "nbd" (include/uapi/linux/nbd-netlink.h), version 1.</summary>
public static class NbdGenl
{
    public const string FamilyName = "nbd";
    public const string MulticastGroup = "nbd_mc_group";
    public const byte Version = 1;

    public const byte CommandConnect = 1;
    public const byte CommandDisconnect = 2;
    public const byte CommandReconfigure = 3;
    public const byte CommandLinkDead = 4;
    public const byte CommandStatus = 5;

    public const ushort AttributeIndex = 1;
    public const ushort AttributeSizeBytes = 2;
    public const ushort AttributeBlockSizeBytes = 3;
    public const ushort AttributeTimeout = 4;
    public const ushort AttributeServerFlags = 5;
    public const ushort AttributeClientFlags = 6;
    public const ushort AttributeSockets = 7;
    public const ushort AttributeDeadConnectionTimeout = 8;
    public const ushort AttributeDeviceList = 9;
    public const ushort AttributeBackendIdentifier = 10;

    /// <summary>NBD_SOCK_ITEM inside SOCKETS, and NBD_SOCK_FD inside an item.</summary>
    public const ushort AttributeSocketItem = 1;
    public const ushort AttributeSocketFd = 1;

    /// <summary>NBD_DEVICE_ITEM inside DEVICE_LIST, and its INDEX / CONNECTED.</summary>
    public const ushort AttributeDeviceItem = 1;
    public const ushort AttributeDeviceIndex = 1;
    public const ushort AttributeDeviceConnected = 2;

    /// <summary>NBD_CFLAG_DESTROY_ON_DISCONNECT: the device is freed once disconnected.</summary>
    public const ulong ClientFlagDestroyOnDisconnect = 1 << 0;

    /// <summary>NBD_CFLAG_DISCONNECT_ON_CLOSE: the device disconnects when the last opener closes it.</summary>
    public const ulong ClientFlagDisconnectOnClose = 1 << 1;
}
