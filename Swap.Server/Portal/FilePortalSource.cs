using System.Net;
using Swap.Slabs.Placement;

namespace Swap.Server.Portal;

/// <summary>A portal.list file, read whole on every call (it is small; comparing what it says is more robust than
/// trusting a modification time, and editors replace files by renaming).</summary>
public sealed class FilePortalSource(string path) : IPortalSource
{
    public string Name => path;

    /// <exception cref="PortalListException">The file cannot be read or has an error (the message names the line).</exception>
    public IReadOnlyList<(string Name, EndPoint EndPoint)> Load() => PortalList.Load(path).Select(ToDaemon).ToList();

    public Task<PortalResolution> ResolveAsync(CancellationToken cancellationToken)
    {
        try
        {
            return Task.FromResult(new PortalResolution(Load(), null));
        }
        catch (PortalListException ex)
        {
            return Task.FromException<PortalResolution>(new PortalResolveException(ex.Message, ex));
        }
    }

    /// <summary>An address as it is; a host name is resolved at each connect.</summary>
    public static (string Name, EndPoint EndPoint) ToDaemon(PortalEntry entry) =>
        (entry.ToString(), IPAddress.TryParse(entry.Host, out var address)
            ? new IPEndPoint(address, entry.Port)
            : new DnsEndPoint(entry.Host, entry.Port));
}
