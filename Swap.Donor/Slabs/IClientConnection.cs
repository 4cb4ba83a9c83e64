namespace Swap.Donor.Slabs;

/// <summary>
/// What the slab store needs of a server's connection: who it speaks for and a way to tell it of an eviction. The
/// connection layer implements it, so the store stays below the connections.
/// </summary>
internal interface IClientConnection
{
    long Id { get; }

    /// <summary>The client this connection said HELLO for; null before HELLO.</summary>
    DonorClient? Client { get; set; }

    bool IsClosed { get; }

    /// <summary>Sends an unsolicited EVICTED notice for the slab (best effort).</summary>
    void SendEvicted(uint slabId, uint epoch);
}
