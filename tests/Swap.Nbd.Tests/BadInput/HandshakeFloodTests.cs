using System.Diagnostics;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.BadInput;

/// <summary>
/// The slow-loris of issue 13: connections that never finish the handshake. They have a budget of their own
/// (MaxHandshakes per listener, the oldest closed for a newcomer) and take none of the MaxConnections places, so they
/// cannot keep a real client (the kernel reconnecting) out until the handshake timeout clears them.
/// </summary>
[Category(Tier.Integration)]
public sealed class HandshakeFloodTests
{
    private const int Flood = 200;
    private static readonly int Budget = new NbdServerOptions().MaxHandshakes;

    [Test, CancelAfter(60_000)]
    public async Task Two_hundred_idle_half_open_connections_do_not_keep_a_client_out(CancellationToken ct)
    {
        // The handshake timeout is far beyond the test, and the flood is far beyond MaxConnections (64): only the
        // handshake budget can let the client in.
        await using var scenario = await BadInputScenario.StartAsync(ct, o => o.HandshakeTimeout = TimeSpan.FromMinutes(10));
        var server = scenario.Server.Server;
        var flood = new List<RawNbdClient>();
        try
        {
            for (var i = 0; i < Flood; i++)
            {
                flood.Add(await RawNbdClient.ConnectTcpAsync(scenario.Server, ct));
            }

            Assert.That(new NbdServerOptions().MaxConnections, Is.LessThan(Flood), "the flood would fill every connection place");
            var stopwatch = Stopwatch.StartNew();
            await using (var client = await scenario.OpenAsync(ct))
            {
                await client.RoundTripAsync(ct);
            }

            Assert.That(stopwatch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "served at once, not after a timeout");
            Assert.That(Evictions(scenario), Is.EqualTo(Flood + 1 - Budget), "every connection beyond the budget closed the oldest handshake, each logged once");
            Assert.That(server.HandshakingCount, Is.LessThanOrEqualTo(Budget));
            Assert.That(await flood[0].ReadUntilClosedAsync(TimeSpan.FromSeconds(5), ct), Has.Length.LessThanOrEqualTo(18),
                "the oldest was closed (after its greeting, if it got that far)");

            // The established connection was never a candidate, and the Unix socket has a budget of its own: a
            // handshake there evicts none of the TCP flood.
            await scenario.Healthy.RoundTripAsync(ct);
            var before = Evictions(scenario);
            await using (var unix = await RawNbdClient.ConnectUnixAsync(scenario.Server.SocketPath, ct))
            {
                await unix.HandshakeAsync(ct);
                await unix.RoundTripAsync(ct);
            }

            Assert.That(Evictions(scenario), Is.EqualTo(before));
            scenario.AssertNoUnexpectedFailure();
        }
        finally
        {
            foreach (var idle in flood)
            {
                await idle.DisposeAsync();
            }
        }
    }

    [Test, CancelAfter(30_000)]
    public async Task A_client_reconnecting_during_a_repeated_flood_gets_in_every_time(CancellationToken ct)
    {
        // The "repeated, it never gets in": waves of idle connections between the client's reconnects.
        await using var scenario = await BadInputScenario.StartAsync(ct, o => o.HandshakeTimeout = TimeSpan.FromMinutes(10));
        var flood = new List<RawNbdClient>();
        try
        {
            for (var wave = 0; wave < 3; wave++)
            {
                for (var i = 0; i < Flood / 2; i++)
                {
                    flood.Add(await RawNbdClient.ConnectTcpAsync(scenario.Server, ct));
                }

                await using var client = await scenario.OpenAsync(ct);
                await client.RoundTripAsync(ct, offset: 4096 * (ulong)(20 + wave));
            }

            Assert.That(scenario.Server.Server.HandshakingCount, Is.LessThanOrEqualTo(Budget));
            scenario.AssertNoUnexpectedFailure();
        }
        finally
        {
            foreach (var idle in flood)
            {
                await idle.DisposeAsync();
            }
        }
    }

    [Test, CancelAfter(30_000)]
    public async Task Only_a_finished_handshake_takes_a_connection_place(CancellationToken ct)
    {
        var log = new RecordingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log));
        await using var server = TestServer.Start(configure: o => o.MaxConnections = 1, loggerFactory: loggerFactory);
        await using var first = await RawNbdClient.ConnectTcpAsync(server, ct);
        await using var second = await RawNbdClient.ConnectTcpAsync(server, ct);
        await first.ReadGreetingAsync(ct);
        await second.ReadGreetingAsync(ct);
        Assert.That(server.Server.HandshakingCount, Is.EqualTo(2), "both admitted to their handshakes although MaxConnections is 1");

        await first.SendClientFlagsAsync(3, ct);
        await first.HandshakeAfterOptionsAsync(ct);

        // The second finishes its handshake when the only place is taken: closed, and the refusal logged.
        await second.SendClientFlagsAsync(3, ct);
        var go = await second.GoAsync("", ct);
        Assert.That(go[^1].Type, Is.EqualTo(Swap.Nbd.Protocol.NbdOptionReplyType.Ack));
        Assert.That(await second.ReadUntilClosedAsync(TimeSpan.FromSeconds(5), ct), Is.Empty);
        Assert.That(log.Entries.Count(e => e.EventId.Id == EventIds.TooManyConnections), Is.EqualTo(1));
        await first.RoundTripAsync(ct);
    }

    private static int Evictions(BadInputScenario scenario) => scenario.Log.Entries.Count(e => e.EventId.Id == EventIds.HandshakeEvicted);
}
