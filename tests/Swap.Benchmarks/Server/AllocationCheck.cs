using System.Diagnostics;
using System.Diagnostics.Tracing;

namespace Swap.Benchmarks.Server;

/// <summary>
/// <c>--alloc-check</c>: drives the in-process server with the raw client and prints how many bytes the whole
/// process allocates per request (GC.GetTotalAllocatedBytes deltas; the client allocates nothing), then samples
/// the runtime's AllocationTick events to name the types that are allocated. Exit code 1 if any scenario
/// allocates a byte or more per request in the second round.
/// </summary>
internal static class AllocationCheck
{
    private const int Depth = 32;
    private const int WarmupRequests = 20_000;
    private const int MeasuredRequests = 100_000;

    private static readonly (string Name, int Batch, Action<PipelinedNbdClient, int> Run)[] Scenarios =
    [
        ("READ 4K QD1", 1, static (c, n) => c.Read(n)),
        ("READ 4K QD32", Depth, static (c, n) => c.Read(n)),
        ("WRITE 4K QD1", 1, static (c, n) => c.Write(n)),
        ("WRITE 4K QD32", Depth, static (c, n) => c.Write(n)),
    ];

    public static async Task<int> RunAsync()
    {
        await using var server = BenchExport.Start();
        using var client = PipelinedNbdClient.Connect(server.SocketPath, Depth);
        var failed = false;

        Console.WriteLine($"In-process NbdServer on a Unix socket, {MeasuredRequests} requests per scenario after {WarmupRequests} warm-up.");
        Console.WriteLine();
        Console.WriteLine("| Round | Scenario | µs/request | process B/request | client-thread B | gen0 GCs |");
        Console.WriteLine("|--:|---|--:|--:|--:|--:|");
        // Two rounds: a cost that shows up only in round 1 is warm-up (tiering, pools filling), not per request.
        List<(string Type, long Bytes)> warmup;
        using (var listener = new AllocationTickListener())
        {
            // Round 1 runs with the sampler on, to name whatever the first requests allocate once.
            foreach (var (name, batch, run) in Scenarios)
            {
                Measure(client, 1, name, batch, run);
            }

            Thread.Sleep(1500);
            warmup = listener.Snapshot();
        }

        foreach (var (name, batch, run) in Scenarios)
        {
            failed |= !Measure(client, 2, name, batch, run);
        }

        Console.WriteLine();
        Console.WriteLine($"Round 1 sampled types: {(warmup.Count == 0 ? "none" : string.Join(", ", warmup.Take(8).Select(t => $"{t.Type} {t.Bytes / 1e6:F1} MB")))}");

        // A second pass with the listener on: its own event objects add a little noise, so the totals above are
        // taken without it. AllocationTick fires about every 100 KB per thread and names the type that crossed it.
        Console.WriteLine();
        Console.WriteLine("Sampled allocations (AllocationTick, ~100 KB granularity) during the same scenarios:");
        using (var calibration = new AllocationTickListener())
        {
            // Proves the listener sees ticks at all, so "no samples" below means no allocation rather than no events.
            for (var i = 0; i < 2000; i++)
            {
                GC.KeepAlive(new byte[1000]);
            }

            Thread.Sleep(1500);
            Console.WriteLine($"  calibration (2 MB of byte[1000] on purpose): {string.Join(", ", calibration.Snapshot().Select(t => $"{t.Type} {t.Bytes / 1e6:F1} MB"))}");
        }

        foreach (var (name, batch, run) in Scenarios)
        {
            using var listener = new AllocationTickListener();
            Drive(client, batch, run, MeasuredRequests);
            // Runtime events reach an EventListener through a dispatch thread, a little after the fact.
            Thread.Sleep(1500);
            var top = listener.Snapshot();
            var total = top.Sum(t => (double)t.Bytes);
            Console.WriteLine($"  {name}: {(top.Count == 0 ? "no samples" : string.Join(", ", top.Take(8).Select(t => $"{t.Type} {t.Bytes / (double)MeasuredRequests:F1} B/req ({100 * t.Bytes / total:F0}%)")))}");
        }

        Console.WriteLine();
        Console.WriteLine(failed ? "RESULT: the request path allocates (target: 0 B per request)" : "RESULT: 0 B per request");
        return failed ? 1 : 0;
    }

    /// <summary>Prints one table row; false if round 2 allocated a byte or more per request.</summary>
    private static bool Measure(PipelinedNbdClient client, int round, string name, int batch, Action<PipelinedNbdClient, int> run)
    {
        Drive(client, batch, run, WarmupRequests);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var gen0 = GC.CollectionCount(0);
        var clientBefore = GC.GetAllocatedBytesForCurrentThread();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var start = Stopwatch.GetTimestamp();
        Drive(client, batch, run, MeasuredRequests);
        var elapsed = Stopwatch.GetElapsedTime(start);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        var clientAllocated = GC.GetAllocatedBytesForCurrentThread() - clientBefore;
        var perRequest = (double)allocated / MeasuredRequests;
        Console.WriteLine($"| {round} | {name} | {elapsed.TotalMicroseconds / MeasuredRequests:F2} | {perRequest:F1} | {clientAllocated} | {GC.CollectionCount(0) - gen0} |");
        return round == 1 || perRequest < 1;
    }

    private static void Drive(PipelinedNbdClient client, int batch, Action<PipelinedNbdClient, int> run, int requests)
    {
        for (var done = 0; done < requests; done += batch)
        {
            run(client, batch);
        }
    }

    /// <summary>Sums GCAllocationTick sample sizes by type name.</summary>
    private sealed class AllocationTickListener : EventListener
    {
        private const int AllocationTickEventId = 10;
        private const long GcKeyword = 0x1;
        private readonly Dictionary<string, long> _bytes = [];
        private readonly Lock _lock = new();

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)GcKeyword);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if (eventData.EventId != AllocationTickEventId || eventData.PayloadNames is null || eventData.Payload is null)
            {
                return;
            }

            var typeIndex = eventData.PayloadNames.IndexOf("TypeName");
            var amountIndex = eventData.PayloadNames.IndexOf("AllocationAmount64");
            if (typeIndex < 0 || amountIndex < 0)
            {
                return;
            }

            var type = eventData.Payload[typeIndex] as string ?? "?";
            var amount = Convert.ToInt64(eventData.Payload[amountIndex]);
            lock (_lock)
            {
                _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
            }
        }

        public List<(string Type, long Bytes)> Snapshot()
        {
            lock (_lock)
            {
                return [.. _bytes.Select(kv => (kv.Key, kv.Value)).OrderByDescending(t => t.Value)];
            }
        }
    }
}
