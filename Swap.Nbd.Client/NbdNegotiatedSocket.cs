using System.Net.Sockets;

namespace Swap.Nbd.Client;

/// <summary>
/// A socket whose handshake is finished and which is now in the transmission phase, with what was agreed.
/// Hand it to <see cref="NbdClientConnection"/> or to anything else that speaks transmission (e.g. the kernel).
/// </summary>
public sealed class NbdNegotiatedSocket(Socket socket, NbdNegotiation negotiation) : IDisposable
{
    public Socket Socket { get; } = socket;
    public NbdNegotiation Negotiation { get; } = negotiation;

    public void Dispose() => Socket.Dispose();
}
