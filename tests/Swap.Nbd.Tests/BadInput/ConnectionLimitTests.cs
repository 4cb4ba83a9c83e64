using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.BadInput;

/// <summary>Clients that hold resources: a stalled handshake and too many connections.</summary>
[Category(Tier.Integration)]
public sealed class ConnectionLimitTests
{
    [TestCase(0, TestName = "Silent_client_is_closed_after_the_handshake_timeout")]
    [TestCase(4, TestName = "Client_stalling_after_its_flags_is_closed_after_the_handshake_timeout")]
    [TestCase(12, TestName = "Client_stalling_inside_an_option_header_is_closed_after_the_handshake_timeout")]
    [CancelAfter(15_000)]
    public async Task Handshake_stall(int bytesSent, CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct, o => o.HandshakeTimeout = TimeSpan.FromSeconds(1));
        await using var staller = await scenario.ConnectAsync(ct);
        var stopwatch = Stopwatch.StartNew();
        if (bytesSent > 0)
        {
            await staller.ReadGreetingAsync(ct);
            var bytes = new byte[bytesSent];
            bytes[3] = 3; // client flags FIXED_NEWSTYLE | NO_ZEROES, then part of an option header
            await staller.SendAsync(bytes, ct);
        }

        // Meanwhile the healthy connection is served without delay.
        await scenario.Healthy.RoundTripAsync(ct);
        Assert.That(stopwatch.Elapsed, Is.LessThan(TimeSpan.FromMilliseconds(900)), "a stalled handshake must not delay others");

        var received = await staller.ReadUntilClosedAsync(TimeSpan.FromSeconds(5), ct);

        Assert.That(stopwatch.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(900)).And.LessThan(TimeSpan.FromSeconds(4)));
        Assert.That(received.Length, Is.EqualTo(bytesSent > 0 ? 0 : 18), "only the greeting was ever sent");
        Assert.That(scenario.Log.Entries.Count(e => e.EventId.Id == EventIds.HandshakeTimeout), Is.EqualTo(1), "the handshake timeout closed it");
        await scenario.AssertServerHealthyAsync(ct);
    }

    [Test, CancelAfter(15_000)]
    public async Task Handshake_timeout_does_not_apply_once_in_transmission(CancellationToken ct)
    {
        // The server's clock is a fake one: it moves past the handshake timeout when the test says, not by sleeping.
        var time = new FakeTimeProvider();
        await using var scenario = await BadInputScenario.StartAsync(ct, o => o.HandshakeTimeout = TimeSpan.FromSeconds(1), time: time);

        time.Advance(TimeSpan.FromSeconds(1.5));

        await scenario.Healthy.RoundTripAsync(ct);
        Assert.That(scenario.Server.Server.ConnectionCount, Is.EqualTo(1), "the connection in transmission is still open");
        Assert.That(scenario.Log.Entries.Where(e => e.EventId.Id == EventIds.HandshakeTimeout), Is.Empty);
    }

    [Test, CancelAfter(15_000)]
    public async Task Connection_beyond_MaxConnections_is_closed_at_once(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct, o => o.MaxConnections = 2);
        await using var second = await scenario.OpenAsync(ct);
        await using (var third = await scenario.ConnectAsync(ct))
        {
            var stopwatch = Stopwatch.StartNew();
            Assert.That(await third.ReadUntilClosedAsync(TimeSpan.FromSeconds(2), ct), Is.Empty, "not even a greeting");
            Assert.That(stopwatch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)));
        }

        Assert.That(scenario.Log.Entries.Count(e => e.EventId.Id == EventIds.TooManyConnections), Is.EqualTo(1), "the refusal is logged");

        await scenario.Healthy.RoundTripAsync(ct);
        await second.RoundTripAsync(ct);

        // Once one leaves, a newcomer gets in.
        await second.DisposeAsync();
        await scenario.WaitForConnectionCountAsync(1, TimeSpan.FromSeconds(3), ct);
        // One newcomer at a time: the full health check opens two more, which this limit would rightly refuse.
        await using var newcomer = await scenario.OpenAsync(ct);
        await newcomer.RoundTripAsync(ct);
    }

    [Test, CancelAfter(20_000)]
    public async Task Client_that_never_reads_its_replies_does_not_stall_others(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct);
        await using (var hog = await scenario.OpenAsync(ct))
        {
            // 256 MiB of READ replies that nobody reads: the server's sends block on this connection only.
            var batch = new byte[NbdRequest.Size * 256];
            for (var i = 0; i < 256; i++)
            {
                new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)i, 0, 1 << 20).Write(batch.AsSpan(i * NbdRequest.Size));
            }

            await hog.SendAsync(batch, ct);
            await Task.Delay(300, ct);

            var stopwatch = Stopwatch.StartNew();
            await scenario.AssertServerHealthyAsync(ct);
            Assert.That(stopwatch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
        }

        // Hanging up with unread replies resets the connection; the server must notice and drop it.
        await scenario.WaitForConnectionCountAsync(1, TimeSpan.FromSeconds(3), ct);
        // One newcomer at a time: the full health check opens two more, which this limit would rightly refuse.
        await using var newcomer = await scenario.OpenAsync(ct);
        await newcomer.RoundTripAsync(ct);
    }
}
