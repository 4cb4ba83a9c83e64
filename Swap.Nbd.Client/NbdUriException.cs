namespace Swap.Nbd.Client;

/// <summary>An NBD URI could not be parsed; the message says what is wrong with it.</summary>
public sealed class NbdUriException : FormatException
{
    public NbdUriException() { }
    public NbdUriException(string message) : base(message) { }
    public NbdUriException(string message, Exception inner) : base(message, inner) { }
}
