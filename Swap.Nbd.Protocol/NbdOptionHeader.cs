namespace Swap.Nbd.Protocol;

/// <summary>Header of a client option request: IHAVEOPT, option, length of the data that follows.</summary>
public readonly record struct NbdOptionHeader(NbdOption Option, uint Length)
{
    public const int Size = 16;
}

/// <summary>Header of a server option reply: magic, echoed option, reply type, length of the data that follows.</summary>
public readonly record struct NbdOptionReplyHeader(NbdOption Option, NbdOptionReplyType Type, uint Length)
{
    public const int Size = 20;

    public bool IsError => ((uint)Type & 0x80000000) != 0;
}
