namespace Swap.Slabs.Remote;

/// <summary>
/// The handshake with a daemon failed on the cluster key: it could not prove the key (a fake daemon, or another
/// cluster's), it refused this server's proof, or only one side runs with a key. The message names the daemon and the fix.
/// </summary>
public sealed class DaemonAuthException : Exception
{
    public DaemonAuthException() { }
    public DaemonAuthException(string message) : base(message) { }
    public DaemonAuthException(string message, Exception inner) : base(message, inner) { }
}
