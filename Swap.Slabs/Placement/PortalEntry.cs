using System.Globalization;

namespace Swap.Slabs.Placement;

/// <summary>One donor daemon from portal.list, with the line it came from so later errors can point at it.</summary>
/// <param name="Host">A host name, an IPv4 address or an IPv6 address without brackets.</param>
public readonly record struct PortalEntry(string Host, int Port, int Line)
{
    /// <summary>"host:port", with an IPv6 address in brackets ("[::1]:9400").</summary>
    public override string ToString() =>
        Host.Contains(':', StringComparison.Ordinal)
            ? string.Create(CultureInfo.InvariantCulture, $"[{Host}]:{Port}")
            : string.Create(CultureInfo.InvariantCulture, $"{Host}:{Port}");
}
