using Swap.Nbd.Protocol;

namespace Swap.Nbd.Tests.Support;

/// <summary>One transmission reply: a simple reply (Chunk is null) or one structured chunk.</summary>
public sealed record RawReply(ulong Cookie, NbdError Error, NbdStructuredReply? Chunk, byte[] Payload)
{
    public bool IsStructured => Chunk is not null;
}
