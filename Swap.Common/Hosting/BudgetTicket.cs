namespace Swap.Common.Hosting;

/// <summary>One connection's place in a <see cref="ConnectionBudget{T}"/>: who it is, where it comes from, what it holds.</summary>
public sealed class BudgetTicket<T>
    where T : class
{
    internal BudgetTicket(T owner, string peer)
    {
        Owner = owner;
        Peer = peer;
        Node = new LinkedListNode<BudgetTicket<T>>(this);
    }

    /// <summary>The connection.</summary>
    public T Owner { get; }

    /// <summary>Where it comes from (for log lines).</summary>
    public string Peer { get; }

    /// <summary>Changed under the budget's lock only.</summary>
    public BudgetTicketState State { get; internal set; } = BudgetTicketState.Handshaking;

    /// <summary>Its place in the budget's oldest-first list while it is handshaking.</summary>
    internal LinkedListNode<BudgetTicket<T>> Node { get; }
}
