namespace Swap.Slabs.Remote;

/// <summary>The connection to a daemon is gone (closed, timed out, or the daemon broke the protocol); its slabs are lost.</summary>
public sealed class DaemonLinkException : Exception
{
    public DaemonLinkException() { }
    public DaemonLinkException(string message) : base(message) { }
    public DaemonLinkException(string message, Exception inner) : base(message, inner) { }
}
