namespace Swap.Server.Portal;

/// <summary>Reads the portal once: a file, A/AAAA records, or SRV records.</summary>
public interface IPortalSource
{
    /// <summary>dns://…, dns+srv://… or the file's path, for log lines.</summary>
    string Name { get; }

    /// <exception cref="PortalResolveException">The answer or the file is bad; keep the last good list.</exception>
    Task<PortalResolution> ResolveAsync(CancellationToken cancellationToken);
}
