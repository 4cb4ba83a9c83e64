namespace Swap.Nbd.Protocol;

/// <summary>Magic numbers of the NBD wire protocol (doc/proto.md).</summary>
public static class NbdMagic
{
    public const ulong InitPasswd = 0x4e42444d41474943; // "NBDMAGIC"
    public const ulong IHaveOpt = 0x49484156454F5054;   // "IHAVEOPT"
    public const ulong OptionReply = 0x0003e889045565a9;
    public const uint Request = 0x25609513;
    public const uint SimpleReply = 0x67446698;
    public const uint StructuredReply = 0x668e33ef;
}
