using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>The server refused an option during the handshake (an NBD_REP_ERR_* reply).</summary>
public sealed class NbdOptionException : IOException
{
    public NbdOptionException() { }
    public NbdOptionException(string message) : base(message) { }
    public NbdOptionException(string message, Exception inner) : base(message, inner) { }

    public NbdOptionException(NbdOption option, NbdOptionReplyType reply, string? serverMessage)
        : base($"server refused {option}: {reply}{(string.IsNullOrEmpty(serverMessage) ? string.Empty : ": " + serverMessage)}")
    {
        Option = option;
        Reply = reply;
        ServerMessage = serverMessage;
    }

    public NbdOption Option { get; }
    public NbdOptionReplyType Reply { get; }
    public string? ServerMessage { get; }
}
