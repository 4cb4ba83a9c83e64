using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;

namespace Swap.Server.Portal;

/// <summary>
/// DNS queries for the portal (DnsClient: UDP, TCP when an answer is truncated, no cache: the TTLs are ours to
/// honour). Every failure, error code or missing record becomes a <see cref="PortalResolveException"/> naming the
/// portal, the query and the name server.
/// </summary>
internal static class DnsLookup
{
    /// <summary>The A and AAAA records of <paramref name="name"/> with the shortest TTL among them; none is an error.</summary>
    public static async Task<(List<IPAddress> Addresses, int Ttl)> AddressesAsync(ILookupClient dns, string name, string portal, CancellationToken cancellationToken)
    {
        var a = await QueryAsync(dns, name, QueryType.A, portal, cancellationToken).ConfigureAwait(false);
        var aaaa = await QueryAsync(dns, name, QueryType.AAAA, portal, cancellationToken).ConfigureAwait(false);
        var records = a.Answers.ARecords().Cast<AddressRecord>().Concat(aaaa.Answers.AaaaRecords()).ToList();
        if (records.Count == 0)
        {
            throw new PortalResolveException($"{portal}: {name} has no A or AAAA record at {Servers(dns)}");
        }

        return (records.Select(r => r.Address).Distinct().ToList(), records.Min(r => r.TimeToLive));
    }

    /// <summary>The response, unless the query failed, timed out or was answered with an error code.</summary>
    public static async Task<IDnsQueryResponse> QueryAsync(ILookupClient dns, string name, QueryType type, string portal, CancellationToken cancellationToken)
    {
        IDnsQueryResponse response;
        try
        {
            response = await dns.QueryAsync(name, type, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DnsResponseException or SocketException or IOException or ArgumentException)
        {
            throw new PortalResolveException($"{portal}: no answer to {type} {name} from {Servers(dns)}: {ex.Message}", ex);
        }

        if (response.HasError)
        {
            throw new PortalResolveException($"{portal}: {type} {name} answered {response.Header.ResponseCode} ({response.ErrorMessage}) by {response.NameServer}");
        }

        return response;
    }

    private static string Servers(ILookupClient dns) => string.Join(", ", dns.NameServers.Select(s => s.ToString()));
}
