namespace Swap.Nbd.Protocol;

/// <summary>Structured reply chunk types.</summary>
public enum NbdReplyChunkType : ushort
{
    None = 0,
    OffsetData = 1,
    OffsetHole = 2,
    BlockStatus = 5,
    Error = 0x8001,
    ErrorOffset = 0x8002,
}

/// <summary>Flags in a structured reply chunk header.</summary>
[Flags]
public enum NbdReplyFlags : ushort
{
    None = 0,
    Done = 1 << 0,
}

/// <summary>Status bits of the base:allocation meta context.</summary>
[Flags]
public enum NbdAllocationState : uint
{
    Data = 0,
    Hole = 1 << 0,
    Zero = 1 << 1,
}
