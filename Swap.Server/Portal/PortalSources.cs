using System.Net;
using DnsClient;
using Swap.Common.Configuration;

namespace Swap.Server.Portal;

/// <summary>Makes the <see cref="IPortalSource"/> a <see cref="PortalAddress"/> names, with the name server it is to ask.</summary>
public static class PortalSources
{
    /// <summary>How long one DNS query may take (then one retry).</summary>
    public static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(2);

    /// <param name="dnsServer">HOST:PORT of the name server (an IP address), or null for those of /etc/resolv.conf.</param>
    public static IPortalSource Create(PortalAddress address, string? dnsServer) => address.Kind switch
    {
        PortalKind.DnsAddresses => new DnsPortalSource(CreateLookup(dnsServer), address.Target, address.Port),
        PortalKind.DnsSrv => new SrvPortalSource(CreateLookup(dnsServer), address.Target),
        _ => new FilePortalSource(address.Target),
    };

    /// <summary>Null when <paramref name="dnsServer"/> is IP:PORT (or [IPv6]:PORT), else the problem and the fix.</summary>
    public static string? DnsServerProblem(string dnsServer) =>
        EndpointParser.TryParse(dnsServer, out var endpoint) && endpoint.Port != 0
            ? null
            : $"'{dnsServer}' is not IP:PORT of a name server (e.g. 10.96.0.10:53, [fd00::a]:53)";

    private static LookupClient CreateLookup(string? dnsServer)
    {
        NameServer[] servers;
        if (dnsServer is not null && EndpointParser.TryParse(dnsServer, out var endpoint))
        {
            servers = [new NameServer(endpoint)];
        }
        else
        {
            // /etc/resolv.conf's name servers; none there is reported at each resolution (and the last good list kept).
            servers = [.. NameServer.ResolveNameServers(skipIPv6SiteLocal: true, fallbackToGooglePublicDns: false)];
            if (servers.Length == 0)
            {
                servers = [new NameServer(IPAddress.Loopback, 53)];
            }
        }

        return new LookupClient(new LookupClientOptions(servers)
        {
            UseCache = false,
            Timeout = QueryTimeout,
            Retries = 1,
            UseTcpOnly = false,
            UseTcpFallback = true,
            ThrowDnsErrors = false,
            ContinueOnDnsError = true,
        });
    }
}
