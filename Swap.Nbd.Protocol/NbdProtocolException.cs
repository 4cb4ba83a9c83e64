using System.Diagnostics.CodeAnalysis;

namespace Swap.Nbd.Protocol;

/// <summary>The peer violated the NBD protocol in a way that cannot be answered with an error reply.</summary>
public sealed class NbdProtocolException : Exception
{
    public NbdProtocolException() { }
    public NbdProtocolException(string message) : base(message) { }
    public NbdProtocolException(string message, Exception inner) : base(message, inner) { }

    [DoesNotReturn]
    public static void Throw(string message) => throw new NbdProtocolException(message);
}
