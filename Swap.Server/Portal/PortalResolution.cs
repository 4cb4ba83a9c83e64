using System.Net;

namespace Swap.Server.Portal;

/// <summary>
/// One good reading of the portal: the daemons (name HOST:PORT, address) and, from DNS, the shortest TTL of the records
/// it was made of (null for a file).
/// </summary>
public sealed record PortalResolution(IReadOnlyList<(string Name, EndPoint EndPoint)> Daemons, TimeSpan? Ttl);
