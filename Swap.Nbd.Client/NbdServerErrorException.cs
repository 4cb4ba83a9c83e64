using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>The server answered a request with an NBD error; the connection is still usable.</summary>
public sealed class NbdServerErrorException : IOException
{
    public NbdServerErrorException() { }
    public NbdServerErrorException(string message) : base(message) { }
    public NbdServerErrorException(string message, Exception inner) : base(message, inner) { }

    public NbdServerErrorException(NbdError error, NbdCommand command, ulong offset, uint length, string? serverMessage)
        : base(Describe(error, command, offset, length, serverMessage))
    {
        Error = error;
        Command = command;
        Offset = offset;
        Length = length;
        ServerMessage = serverMessage;
    }

    public NbdError Error { get; }
    public NbdCommand Command { get; }
    public ulong Offset { get; }
    public uint Length { get; }

    /// <summary>The text of a structured error chunk, if the server sent one.</summary>
    public string? ServerMessage { get; }

    private static string Describe(NbdError error, NbdCommand command, ulong offset, uint length, string? serverMessage)
    {
        var name = Enum.IsDefined(error) ? "E" + error.ToString().ToUpperInvariant() : $"error {(uint)error}";
        var text = $"server failed {command} at {offset} (+{length}): {name}";
        return string.IsNullOrEmpty(serverMessage) ? text : $"{text}: {serverMessage}";
    }
}
