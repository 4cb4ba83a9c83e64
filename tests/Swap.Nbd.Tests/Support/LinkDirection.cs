namespace Swap.Nbd.Tests.Support;

/// <summary>Which way a <see cref="NetLab"/> fault drops packets on a donor's link (scripts/netlab.sh's DIR).</summary>
public enum LinkDirection
{
    /// <summary>Both ways.</summary>
    Both,

    /// <summary>The server's packets are lost; the donor's answers would get through.</summary>
    ToDonor,

    /// <summary>The donor's answers are lost; the server's packets get through.</summary>
    FromDonor,
}
