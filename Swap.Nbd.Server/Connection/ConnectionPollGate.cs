using Swap.Nbd.Server.Transmission;
using Swap.Nbd.Server.Transport;

namespace Swap.Nbd.Server.Connection;

/// <summary>
/// Tells a connection's transport when polling for input is worth a CPU: the client moves next only once every
/// request it sent is answered, and the server shares out polling slots among its connections.
/// </summary>
internal sealed class ConnectionPollGate(InFlightBudget budget, NbdServerState state) : IInputPollGate
{
    public bool PeerMovesNext => budget.AnsweredAll;

    public bool TryBeginPoll() => state.TryBeginPoll();

    public void EndPoll() => state.EndPoll();
}
