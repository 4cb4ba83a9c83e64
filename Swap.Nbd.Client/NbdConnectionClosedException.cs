namespace Swap.Nbd.Client;

/// <summary>A request could not complete because the connection ended (closed, failed or disconnected).</summary>
public sealed class NbdConnectionClosedException : IOException
{
    public NbdConnectionClosedException() { }
    public NbdConnectionClosedException(string message) : base(message) { }
    public NbdConnectionClosedException(string message, Exception inner) : base(message, inner) { }
}
