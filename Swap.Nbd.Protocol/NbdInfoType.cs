namespace Swap.Nbd.Protocol;

/// <summary>Information items carried in NBD_REP_INFO replies to OPT_INFO and OPT_GO.</summary>
public enum NbdInfoType : ushort
{
    Export = 0,
    Name = 1,
    Description = 2,
    BlockSize = 3,
}
