using System.Globalization;

namespace Swap.Server.Portal;

/// <summary>
/// What <c>--portal</c> names: a portal.list file, <c>dns://NAME:PORT</c> (every A and AAAA record of NAME, each a
/// daemon on PORT, as a Kubernetes headless Service gives) or <c>dns+srv://_service._proto.NAME</c> (SRV records: each
/// target's addresses, on the record's port).
/// </summary>
public sealed record PortalAddress(PortalKind Kind, string Target, int Port)
{
    public const string DnsScheme = "dns://";
    public const string SrvScheme = "dns+srv://";

    /// <summary>Null when <paramref name="text"/> is a valid portal, else the problem and the fix (without the key).</summary>
    public static string? Problem(string text) => Parse(text, out _);

    /// <exception cref="ArgumentException">Not a valid portal (see <see cref="Problem"/>).</exception>
    public static PortalAddress Parse(string text) =>
        Parse(text, out var address) is { } problem ? throw new ArgumentException(problem, nameof(text)) : address!;

    private static string? Parse(string text, out PortalAddress? address)
    {
        address = null;
        if (text.StartsWith(DnsScheme, StringComparison.OrdinalIgnoreCase))
        {
            var rest = text[DnsScheme.Length..];
            var colon = rest.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(rest.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                return $"'{text}' is not dns://NAME:PORT (the daemons' port is required, 1-65535, e.g. dns://swapnbd-donors.swap.svc.cluster.local:9400)";
            }

            if (!IsDnsName(rest[..colon]))
            {
                return $"'{text}': '{rest[..colon]}' is not a DNS name (letters, digits, '-', '_' and dots, e.g. dns://donors.example.org:9400)";
            }

            address = new PortalAddress(PortalKind.DnsAddresses, rest[..colon].TrimEnd('.'), port);
            return null;
        }

        if (text.StartsWith(SrvScheme, StringComparison.OrdinalIgnoreCase))
        {
            var name = text[SrvScheme.Length..];
            if (!IsDnsName(name) || !name.StartsWith('_'))
            {
                return $"'{text}' is not dns+srv://_SERVICE._PROTO.NAME (an SRV name, the ports come from the records, e.g. dns+srv://_swapnbd._tcp.donors.example.org)";
            }

            address = new PortalAddress(PortalKind.DnsSrv, name.TrimEnd('.'), 0);
            return null;
        }

        if (text.Contains("://", StringComparison.Ordinal))
        {
            return $"'{text}': unknown scheme; use a portal.list path, dns://NAME:PORT or dns+srv://_SERVICE._PROTO.NAME";
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            return "empty; use a portal.list path, dns://NAME:PORT or dns+srv://_SERVICE._PROTO.NAME";
        }

        address = new PortalAddress(PortalKind.File, text, 0);
        return null;
    }

    private static bool IsDnsName(string name)
    {
        name = name.TrimEnd('.');
        if (name.Length is 0 or > 253)
        {
            return false;
        }

        foreach (var label in name.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-' || !label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    public override string ToString() => Kind switch
    {
        PortalKind.DnsAddresses => string.Create(CultureInfo.InvariantCulture, $"{DnsScheme}{Target}:{Port}"),
        PortalKind.DnsSrv => SrvScheme + Target,
        _ => Target,
    };
}
