namespace Swap.Nbd.Client.Netlink;

/// <summary>One device from an NBD_CMD_STATUS reply.</summary>
public readonly record struct NbdDeviceStatus(uint Index, bool Connected);
