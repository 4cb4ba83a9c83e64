using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// The server-wide budget for pinned request buffers, which keeps the GC heap under its hard limit however many
/// connections push requests: a connection waits for its own requests, never for another's.
/// </summary>
[Category(Tier.Integration)]
public sealed class BufferBudgetTests
{
    private const int RequestSize = 512 << 10;

    [TestCase(1L << 20, 2, 3)]
    [TestCase(0L, 4, 6)]
    [CancelAfter(30_000)]
    public async Task Connections_start_requests_while_all_buffers_fit_the_budget_and_each_may_always_start_one(
        long budget, int firstConnection, int bothConnections, CancellationToken ct)
    {
        var directory = Directory.CreateTempSubdirectory("swapnbd-budget-").FullName;
        var log = new RecordingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(log));
        using var device = new GatedDevice(16L << 20);
        var options = new NbdServerOptions
        {
            Listen = "",
            Socket = Path.Combine(directory, "nbd.sock"),
            BufferBudget = budget, // 0: follow the heap limit, which the test host does not have
        };
        var server = new NbdServer(options, device, loggerFactory);
        server.Start();
        try
        {
            await using var first = await RawNbdClient.ConnectUnixAsync(options.Socket, ct);
            await first.HandshakeAsync(ct);
            await using var second = await RawNbdClient.ConnectUnixAsync(options.Socket, ct);
            await second.HandshakeAsync(ct);

            for (var i = 0; i < 4; i++)
            {
                await first.SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)(10 + i), (ulong)i * RequestSize, RequestSize), ct);
            }

            // A connection parks once, at its first request over budget, until one of its own finishes (none can here).
            var budgetWaits = firstConnection < 4 ? 1 : 0;
            Assert.That(await SettledWaitingAsync(device, log, firstConnection, budgetWaits, ct), Is.EqualTo(firstConnection), "reads of the first connection started");

            for (var i = 0; i < 2; i++)
            {
                await second.SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)(20 + i), (ulong)i * RequestSize, RequestSize), ct);
            }

            budgetWaits += bothConnections - firstConnection < 2 ? 1 : 0;
            Assert.That(await SettledWaitingAsync(device, log, bothConnections, budgetWaits, ct), Is.EqualTo(bothConnections), "reads of both connections started");

            device.Open();
            foreach (var (client, count) in new[] { (first, 4), (second, 2) })
            {
                for (var i = 0; i < count; i++)
                {
                    var reply = await client.ReadReplyAsync(ct, RequestSize);
                    Assert.That(reply.Error, Is.EqualTo(NbdError.None), $"request {reply.Cookie}");
                }
            }
        }
        finally
        {
            await server.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// Reads held at the device once every connection has either started all it was sent or parked for the budget
    /// (<paramref name="budgetWaits"/> such events logged): from then on none can start another, so the count is final.
    /// </summary>
    private static async Task<int> SettledWaitingAsync(GatedDevice device, RecordingLoggerProvider log, int expected, int budgetWaits, CancellationToken ct)
    {
        for (var i = 0; i < 2000 && (device.Waiting < expected || log.Entries.Count(e => e.EventId.Id == EventIds.WaitingForBudget) < budgetWaits); i++)
        {
            await Task.Delay(5, ct);
        }

        return device.Waiting;
    }
}
