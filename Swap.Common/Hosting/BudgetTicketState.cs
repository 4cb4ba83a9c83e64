namespace Swap.Common.Hosting;

/// <summary>Where a connection stands in a <see cref="ConnectionBudget{T}"/>.</summary>
public enum BudgetTicketState
{
    /// <summary>Accepted, handshake (or HELLO) not finished: holds one of the handshake places.</summary>
    Handshaking,

    /// <summary>Handshake finished: holds one of the connection places.</summary>
    Established,

    /// <summary>Closed while handshaking to make room for a newer connection.</summary>
    Evicted,

    /// <summary>Finished its handshake when every connection place was taken.</summary>
    Refused,

    /// <summary>Closed; holds nothing.</summary>
    Released,
}
