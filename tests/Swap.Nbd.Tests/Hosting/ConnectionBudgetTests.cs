using NUnit.Framework;
using Swap.Common.Hosting;

namespace Swap.Nbd.Tests.Hosting;

/// <summary>The two budgets of <see cref="ConnectionBudget{T}"/>: handshaking connections, oldest dropped first, and established ones.</summary>
[Category(Tier.Unit)]
public sealed class ConnectionBudgetTests
{
    private sealed record Conn(int N);

    [Test]
    public void A_newcomer_beyond_the_handshake_budget_evicts_the_oldest_handshake()
    {
        var budget = new ConnectionBudget<Conn>(maxHandshaking: 3, maxEstablished: 10);
        var tickets = Enumerable.Range(0, 3).Select(i => budget.Admit(new Conn(i), $"peer{i}", out _)).ToList();
        Assert.That(budget.Handshaking, Is.EqualTo(3));

        var fourth = budget.Admit(new Conn(3), "peer3", out var evicted);
        Assert.That(evicted, Is.SameAs(tickets[0]), "the oldest goes");
        Assert.That((evicted!.Owner.N, evicted.Peer, evicted.State), Is.EqualTo((0, "peer0", BudgetTicketState.Evicted)));
        Assert.That(budget.Handshaking, Is.EqualTo(3));

        budget.Admit(new Conn(4), "peer4", out evicted);
        Assert.That(evicted, Is.SameAs(tickets[1]), "then the next oldest");
        Assert.That(budget.TryEstablish(tickets[0]), Is.False, "an evicted connection cannot come back");
        Assert.That(budget.TryEstablish(fourth), Is.True);
        Assert.That((budget.Handshaking, budget.Established), Is.EqualTo((2, 1)));
    }

    [Test]
    public void Established_connections_are_never_evicted_and_only_they_count_against_the_connection_places()
    {
        var budget = new ConnectionBudget<Conn>(maxHandshaking: 2, maxEstablished: 2);
        var a = budget.Admit(new Conn(1), "a", out _);
        Assert.That(budget.TryEstablish(a), Is.True);
        Assert.That(budget.TryEstablish(a), Is.True, "a repeated HELLO keeps its place");
        for (var i = 0; i < 50; i++)
        {
            budget.Admit(new Conn(100 + i), "flood", out var evicted);
            Assert.That(evicted, Is.Not.SameAs(a));
        }

        Assert.That((a.State, budget.Established, budget.EstablishedFull), Is.EqualTo((BudgetTicketState.Established, 1, false)),
            "50 handshakes took no connection place");
    }

    [Test]
    public void A_handshake_that_finishes_when_every_place_is_taken_is_refused()
    {
        var budget = new ConnectionBudget<Conn>(maxHandshaking: 4, maxEstablished: 1);
        var a = budget.Admit(new Conn(1), "a", out _);
        var b = budget.Admit(new Conn(2), "b", out _);
        Assert.That(budget.TryEstablish(a), Is.True);
        Assert.That(budget.EstablishedFull, Is.True);
        Assert.That(budget.TryEstablish(b), Is.False);
        Assert.That((b.State, budget.Handshaking), Is.EqualTo((BudgetTicketState.Refused, 0)));

        budget.Release(a);
        budget.Release(a);
        Assert.That((budget.Established, budget.EstablishedFull), Is.EqualTo((0, false)), "released once, however often it is told");
        budget.Release(b);
        Assert.That(budget.Established, Is.Zero, "a refused connection held no place");
    }

    [Test]
    public void Releasing_a_handshake_frees_its_place_without_evicting_anyone()
    {
        var budget = new ConnectionBudget<Conn>(maxHandshaking: 2, maxEstablished: 2);
        var a = budget.Admit(new Conn(1), "a", out _);
        var b = budget.Admit(new Conn(2), "b", out _);
        budget.Release(a);
        budget.Admit(new Conn(3), "c", out var evicted);
        Assert.That(evicted, Is.Null);
        Assert.That((b.State, budget.Handshaking), Is.EqualTo((BudgetTicketState.Handshaking, 2)));
    }

    [Test]
    public void Each_listener_has_its_own_handshake_budget()
    {
        var budget = new ConnectionBudget<Conn>(maxHandshaking: 2, maxEstablished: 8, listeners: 2);
        var kernel = budget.Admit(new Conn(0), "unix", out _, listener: 1);
        for (var i = 0; i < 20; i++)
        {
            budget.Admit(new Conn(i + 1), "tcp", out var evicted, listener: 0);
            Assert.That(evicted, Is.Not.SameAs(kernel), "strangers on TCP do not push out the socket's handshakes");
        }

        Assert.That((kernel.State, budget.Handshaking), Is.EqualTo((BudgetTicketState.Handshaking, 3)));
        Assert.That(budget.TryEstablish(kernel), Is.True);
    }
}
