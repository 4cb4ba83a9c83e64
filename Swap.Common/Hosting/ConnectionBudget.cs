namespace Swap.Common.Hosting;

/// <summary>
/// Two budgets for the connections of one listener, shared by the NBD server and the donor daemon. Connections still
/// in their handshake (nothing proven yet: a port scanner, a slow-loris, a stranger) have a small budget of their
/// own; when it is full the oldest of them is closed to admit the newcomer, so half-open connections cannot keep a
/// real client (the kernel reconnecting, a server re-linking to its donor) out for longer than it takes to open
/// <see cref="MaxHandshaking"/> newer ones during its handshake. Each listener has a handshake budget of its own
/// (strangers on a TCP port cannot push out the kernel's handshakes on the Unix socket). Only a connection that
/// finished its handshake takes one of the <see cref="MaxEstablished"/> places, which all listeners share.
/// </summary>
public sealed class ConnectionBudget<T>
    where T : class
{
    private readonly Lock _gate = new();
    private readonly LinkedList<BudgetTicket<T>>[] _handshaking;
    private int _established;

    /// <param name="listeners">Handshake budgets, one per listener (numbered from 0).</param>
    public ConnectionBudget(int maxHandshaking, int maxEstablished, int listeners = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxHandshaking, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEstablished, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(listeners, 1);
        MaxHandshaking = maxHandshaking;
        MaxEstablished = maxEstablished;
        _handshaking = new LinkedList<BudgetTicket<T>>[listeners];
        for (var i = 0; i < listeners; i++)
        {
            _handshaking[i] = new LinkedList<BudgetTicket<T>>();
        }
    }

    /// <summary>Connections in their handshake at most, per listener; a newcomer beyond closes the oldest of its listener.</summary>
    public int MaxHandshaking { get; }

    /// <summary>Connections past their handshake at most.</summary>
    public int MaxEstablished { get; }

    /// <summary>Connections in their handshake now, every listener together.</summary>
    public int Handshaking
    {
        get
        {
            lock (_gate)
            {
                return _handshaking.Sum(l => l.Count);
            }
        }
    }

    /// <summary>Connections past their handshake now.</summary>
    public int Established => Volatile.Read(ref _established);

    /// <summary>
    /// True when every connection place is taken: a new connection could not be established, so it is refused at
    /// accept rather than given a handshake place.
    /// </summary>
    public bool EstablishedFull => Established >= MaxEstablished;

    /// <summary>
    /// Takes a handshake place of <paramref name="listener"/> for <paramref name="owner"/>. When all were taken, the
    /// oldest connection handshaking on that listener gives up its place and is returned in
    /// <paramref name="evicted"/>: the caller closes it (outside any lock).
    /// </summary>
    public BudgetTicket<T> Admit(T owner, string peer, out BudgetTicket<T>? evicted, int listener = 0)
    {
        var ticket = new BudgetTicket<T>(owner, peer);
        var queue = _handshaking[listener];
        evicted = null;
        lock (_gate)
        {
            if (queue.Count >= MaxHandshaking)
            {
                evicted = queue.First!.Value;
                queue.RemoveFirst();
                evicted.State = BudgetTicketState.Evicted;
            }

            queue.AddLast(ticket.Node);
        }

        return ticket;
    }

    /// <summary>
    /// The handshake of <paramref name="ticket"/> finished: true when it now holds a connection place (also when it
    /// already did: a repeated HELLO); false when it was evicted meanwhile or every place is taken
    /// (<see cref="BudgetTicket{T}.State"/> says which). On false the caller closes the connection.
    /// </summary>
    public bool TryEstablish(BudgetTicket<T> ticket)
    {
        lock (_gate)
        {
            if (ticket.State != BudgetTicketState.Handshaking)
            {
                return ticket.State == BudgetTicketState.Established;
            }

            ticket.Node.List!.Remove(ticket.Node);
            if (_established >= MaxEstablished)
            {
                ticket.State = BudgetTicketState.Refused;
                return false;
            }

            ticket.State = BudgetTicketState.Established;
            _established++;
            return true;
        }
    }

    /// <summary>The connection closed: gives back whatever place it held. Idempotent.</summary>
    public void Release(BudgetTicket<T> ticket)
    {
        lock (_gate)
        {
            switch (ticket.State)
            {
                case BudgetTicketState.Handshaking:
                    ticket.Node.List!.Remove(ticket.Node);
                    break;
                case BudgetTicketState.Established:
                    _established--;
                    break;
            }

            ticket.State = BudgetTicketState.Released;
        }
    }
}
