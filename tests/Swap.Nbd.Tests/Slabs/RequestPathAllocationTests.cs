using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>
/// The whole NBD request path in slab mode (sealed pages, hedged reads, two daemons) allocates nothing once warm:
/// READs that wait on a daemon, WRITEs, TRIMs and FLUSHes, 1 to 8 in flight, 4 KiB and 128 KiB, replies out of
/// order. On a host swapping to this server every allocation is a page that may wait in reclaim for the swap-out
/// being served (docs/operations.md, "Whole-machine swap"); the whole-machine guest found a connection thread
/// clearing a fresh GC allocation context. The runtime's allocation-tick events (one per ~100 KB allocated, with
/// the type and the OS thread) are counted on the server's threads while a client on a blocking socket of its own
/// drives the load; byte arrays are reported, not counted: they are the buffer pools growing to a new peak (bounded,
/// and fixed in the executable when memory is locked), not a cost per request.
/// </summary>
[Category(Tier.Integration)]
public sealed class RequestPathAllocationTests
{
    private const int SlabSize = 1 << 20;
    private const int Slabs = 8;
    private const int PageSize = 4096;

    [Test]
    [CancelAfter(180_000)]
    public async Task Requests_of_every_kind_allocate_nothing_on_the_servers_threads_once_warm(CancellationToken ct)
    {
        // Donors as processes: in-process ones would share the thread pool whose threads are counted here.
        await using var cluster = await SlabCluster.StartAsync(2, Slabs * SlabSize, SlabSize, processes: true);
        var port = ((IPEndPoint)cluster.Server.EndPoints.First(e => e is IPEndPoint)).Port;
        using var socket = BlockingNbdClient.Connect(port);
        var client = new LoadClient(socket);

        RunOnThread(() => client.Run(rounds: 4000, seed: 5));
        await cluster.WaitForAsync(s => s.ActiveSlabs == Slabs && s.PagesUnsent == 0, "every slab placed and the write-behind queue empty", ct);
        RunOnThread(() => client.Run(rounds: 2000, seed: 6));

        long requests;
        var logged = cluster.Log.Entries.Count;
        using (var ticks = new AllocationTicks())
        {
            requests = RunOnThread(() => client.Run(rounds: 20000, seed: 7));
            var report = ticks.OnThreads(IsServerThread);
            TestContext.Out.WriteLine($"{requests} requests, {client.Errors} errors; allocation ticks on the server's threads:");
            foreach (var entry in cluster.Log.Entries.Skip(logged))
            {
                TestContext.Out.WriteLine($"  logged meanwhile: [{entry.EventId.Id}] {entry.Message}");
            }
            foreach (var (key, count) in report.OrderByDescending(r => r.Value))
            {
                TestContext.Out.WriteLine($"  {count,4} x {key}");
            }

            // Before the retained builders and the reply lock: about 300 ticks (480 bytes a request). A tick or two is
            // what the timers and rare paths (a heartbeat, a link's watchdog) add in 20 s, under 3 bytes a request.
            var perRequest = report.Where(r => !r.Key.Type.StartsWith("System.Byte[]", StringComparison.Ordinal)).Sum(r => r.Value);
            Assert.That(perRequest, Is.LessThanOrEqualTo(2), $"allocation ticks (~100 KB each) on the server's threads over {requests} requests, byte arrays aside");
        }

        Assert.That(client.Errors, Is.Zero, "every request answered OK");
        Assert.That(cluster.Device.GetStats().OpenFailures, Is.Zero);
    }

    /// <summary>The server's own threads: connections, daemon links, write-behind, the hedge sweeper and the pool
    /// (the test's client has a thread of its own; the donors are processes).</summary>
    private static bool IsServerThread(string name) =>
        name.StartsWith("nbd-connection", StringComparison.Ordinal) || name.StartsWith("daemon", StringComparison.Ordinal)
        || name.StartsWith("hedged reads", StringComparison.Ordinal) || name.StartsWith(".NET TP Worker", StringComparison.Ordinal);

    private static long RunOnThread(Func<long> work)
    {
        long result = 0;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception ex)
            {
                error = ex;
            }
        }) { Name = "test-client", IsBackground = true };
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(120)))
        {
            Assert.Fail("the load did not finish within 120 s");
        }

        if (error is not null)
        {
            throw new AssertionException($"the load failed: {error}");
        }

        return result;
    }

    /// <summary>Batches of 1-8 requests (40 % WRITE, 40 % READ, 10 % TRIM, 10 % FLUSH; a quarter 128 KiB), sent at
    /// once and their replies read in whatever order they come, on buffers made once.</summary>
    private sealed class LoadClient(Socket socket)
    {
        private readonly byte[] _send = new byte[8 * (NbdRequest.Size + (128 << 10))];
        private readonly byte[] _receive = new byte[128 << 10];
        private readonly (NbdCommand Command, int Length)[] _batch = new (NbdCommand, int)[8];
        private ulong _cookie = 1;

        public int Errors { get; private set; }

        public long Run(int rounds, int seed)
        {
            var random = new Random(seed);
            long requests = 0;
            for (var round = 0; round < rounds; round++)
            {
                var count = 1 + random.Next(8);
                var at = 0;
                var first = _cookie;
                for (var i = 0; i < count; i++)
                {
                    var kind = random.Next(10);
                    var command = kind < 4 ? NbdCommand.Write : kind < 8 ? NbdCommand.Read : kind == 8 ? NbdCommand.Trim : NbdCommand.Flush;
                    var length = command == NbdCommand.Flush ? 0 : random.Next(4) == 0 ? 128 << 10 : PageSize;
                    var offset = command == NbdCommand.Flush ? 0UL : (ulong)random.Next((Slabs * SlabSize / PageSize) - 32) * PageSize;
                    new NbdRequest(NbdCommandFlags.None, command, _cookie++, offset, (uint)length).Write(_send.AsSpan(at));
                    at += NbdRequest.Size;
                    if (command == NbdCommand.Write)
                    {
                        _send.AsSpan(at, length).Fill((byte)round);
                        at += length;
                    }

                    _batch[i] = (command, length);
                }

                socket.Send(_send.AsSpan(0, at));
                for (var i = 0; i < count; i++)
                {
                    BlockingNbdClient.ReceiveExactly(socket, _receive.AsSpan(0, NbdSimpleReply.Size));
                    var error = BinaryPrimitives.ReadUInt32BigEndian(_receive.AsSpan(4));
                    var index = (long)(BinaryPrimitives.ReadUInt64BigEndian(_receive.AsSpan(8)) - first);
                    if (index < 0 || index >= count)
                    {
                        throw new InvalidOperationException($"a reply to cookie {first + (ulong)index}, not one of this batch");
                    }

                    if (error != 0)
                    {
                        Errors++;
                    }
                    else if (_batch[index].Command == NbdCommand.Read)
                    {
                        BlockingNbdClient.ReceiveExactly(socket, _receive.AsSpan(0, _batch[index].Length));
                    }
                }

                requests += count;
            }

            return requests;
        }
    }
}
