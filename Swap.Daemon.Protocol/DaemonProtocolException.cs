using System.Diagnostics.CodeAnalysis;

namespace Swap.Daemon.Protocol;

/// <summary>The peer broke the daemon protocol's framing; the connection cannot go on.</summary>
public sealed class DaemonProtocolException : Exception
{
    public DaemonProtocolException() { }
    public DaemonProtocolException(string message) : base(message) { }
    public DaemonProtocolException(string message, Exception inner) : base(message, inner) { }

    [DoesNotReturn]
    public static void Throw(string message) => throw new DaemonProtocolException(message);
}
