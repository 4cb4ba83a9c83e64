namespace Swap.Nbd.Tests.Faults;

/// <summary>What a malicious donor does to the pages it holds, as a test switches it on through its <see cref="DonorLies"/>.</summary>
public enum DonorLie
{
    None = 0,

    /// <summary>READ replies come back with one bit of every page flipped.</summary>
    FlipBit,

    /// <summary>READ replies carry the pages one page further on in the same slab (or one before, at its end).</summary>
    OtherPage,

    /// <summary>READ replies carry what another server (another client id) stored at the same place of one of its slabs.</summary>
    OtherServersPage,

    /// <summary>READ replies carry the version of each page written before the last one (pages written once are left).</summary>
    OlderVersion,

    /// <summary>READ replies carry zeros.</summary>
    Zeros,

    /// <summary>WRITEs are answered OK but store nothing: the slab keeps what it had.</summary>
    DropWrites,
}
