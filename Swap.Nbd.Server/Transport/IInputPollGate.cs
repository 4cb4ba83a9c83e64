namespace Swap.Nbd.Server.Transport;

/// <summary>
/// What the layer above tells a <see cref="SocketTransport"/> about polling for input: whether the peer is the one to
/// move next, and a share of the CPUs that polling may take. The transport asks in the order of cost it can pay for.
/// </summary>
internal interface IInputPollGate
{
    /// <summary>True when the peer is the one to move next (nothing it sent is still waiting for an answer), so
    /// polling for its next bytes is worth a CPU. Called before every receive: keep it cheap.</summary>
    bool PeerMovesNext { get; }

    /// <summary>Takes a polling slot if one is free; after a true the transport calls <see cref="EndPoll"/>.</summary>
    bool TryBeginPoll();

    void EndPoll();
}
