using System.Net;
using DnsClient;
using Swap.Slabs.Placement;

namespace Swap.Server.Portal;

/// <summary>dns://NAME:PORT: a daemon on PORT at every A and AAAA record of NAME (a Kubernetes headless Service).</summary>
public sealed class DnsPortalSource(ILookupClient dns, string host, int port) : IPortalSource
{
    public string Name => new PortalAddress(PortalKind.DnsAddresses, host, port).ToString();

    public async Task<PortalResolution> ResolveAsync(CancellationToken cancellationToken)
    {
        var (addresses, ttl) = await DnsLookup.AddressesAsync(dns, host, Name, cancellationToken).ConfigureAwait(false);
        var daemons = addresses.Select(a => (new PortalEntry(a.ToString(), port, 0).ToString(), (EndPoint)new IPEndPoint(a, port)))
            .OrderBy(d => d.Item1, StringComparer.Ordinal).ToList();
        return new PortalResolution(daemons, TimeSpan.FromSeconds(ttl));
    }
}
