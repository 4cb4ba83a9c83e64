using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Support;

/// <summary>One option reply as it came off the wire.</summary>
public sealed record RawOptionReply(NbdOption Option, NbdOptionReplyType Type, byte[] Data)
{
    public bool IsError => ((uint)Type & 0x80000000) != 0;
}
