using System.Net;
using DnsClient;
using DnsClient.Protocol;
using Swap.Slabs.Placement;

namespace Swap.Server.Portal;

/// <summary>
/// dns+srv://_SERVICE._PROTO.NAME: every SRV record is a daemon host (priority and weight are not used: every donor
/// takes slabs), at each A and AAAA address of its target (from the answer's additional records when the server gave
/// them, else asked for), on the record's port. A target without an address makes the whole answer bad.
/// </summary>
public sealed class SrvPortalSource(ILookupClient dns, string service) : IPortalSource
{
    public string Name => new PortalAddress(PortalKind.DnsSrv, service, 0).ToString();

    public async Task<PortalResolution> ResolveAsync(CancellationToken cancellationToken)
    {
        var response = await DnsLookup.QueryAsync(dns, service, QueryType.SRV, Name, cancellationToken).ConfigureAwait(false);
        var records = response.Answers.SrvRecords().ToList();
        if (records.Count == 0)
        {
            throw new PortalResolveException($"{Name}: no SRV record for {service} at {response.NameServer}");
        }

        var ttl = records.Min(r => r.TimeToLive);
        var daemons = new SortedDictionary<string, EndPoint>(StringComparer.Ordinal);
        foreach (var record in records)
        {
            if (record.Port == 0)
            {
                throw new PortalResolveException($"{Name}: the SRV record of {record.Target} has port 0");
            }

            var given = response.Additionals.OfType<AddressRecord>().Where(a => a.DomainName == record.Target).ToList();
            List<IPAddress> addresses;
            if (given.Count > 0)
            {
                addresses = given.Select(a => a.Address).ToList();
                ttl = Math.Min(ttl, given.Min(a => a.TimeToLive));
            }
            else
            {
                var (resolved, addressTtl) = await DnsLookup.AddressesAsync(dns, record.Target.Value.TrimEnd('.'), Name, cancellationToken).ConfigureAwait(false);
                addresses = resolved;
                ttl = Math.Min(ttl, addressTtl);
            }

            foreach (var address in addresses)
            {
                daemons[new PortalEntry(address.ToString(), record.Port, 0).ToString()] = new IPEndPoint(address, record.Port);
            }
        }

        return new PortalResolution(daemons.Select(d => (d.Key, d.Value)).ToList(), TimeSpan.FromSeconds(ttl));
    }
}
