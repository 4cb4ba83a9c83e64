namespace Swap.Nbd.Client.Netlink;

/// <summary>The generic netlink controller's commands and attributes (linux/genetlink.h), for CTRL_CMD_GETFAMILY.</summary>
public static class GenericController
{
    public const byte CommandNewFamily = 1;
    public const byte CommandGetFamily = 3;
    public const byte Version = 1;

    public const ushort AttributeFamilyId = 1;
    public const ushort AttributeFamilyName = 2;
    public const ushort AttributeVersion = 3;
    public const ushort AttributeMulticastGroups = 7;

    public const ushort AttributeGroupName = 1;
    public const ushort AttributeGroupId = 2;
}
