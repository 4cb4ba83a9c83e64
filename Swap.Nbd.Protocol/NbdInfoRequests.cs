namespace Swap.Nbd.Protocol;

/// <summary>The set of NBD_INFO_* items a client asked for in OPT_INFO / OPT_GO (unknown ones ignored).</summary>
public readonly record struct NbdInfoRequests(bool Name, bool Description, bool BlockSize)
{
    public NbdInfoRequests With(NbdInfoType type) => type switch
    {
        NbdInfoType.Name => this with { Name = true },
        NbdInfoType.Description => this with { Description = true },
        NbdInfoType.BlockSize => this with { BlockSize = true },
        _ => this,
    };
}
