namespace Swap.Server.Portal;

/// <summary>Where the list of donor daemons comes from (<see cref="PortalAddress"/>).</summary>
public enum PortalKind
{
    /// <summary>A portal.list file, re-read when it changes and on SIGHUP.</summary>
    File,

    /// <summary>dns://NAME:PORT: every A and AAAA record of NAME.</summary>
    DnsAddresses,

    /// <summary>dns+srv://NAME: SRV records, each target's A and AAAA records on the record's port.</summary>
    DnsSrv,
}
