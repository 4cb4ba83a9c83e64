using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// Counts the runtime's GC allocation-tick events (about one per 100 KB allocated; the type allocated then and the
/// OS thread that did) by thread name (from /proc/self/task/TID/comm, as the kernel shows it: 15 characters) and type,
/// for as long as it lives.
/// </summary>
internal sealed class AllocationTicks : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<(string Thread, string Type), int> _ticks = new();
    private readonly ConcurrentDictionary<long, string> _threadNames = new();

    /// <summary>Ticks on threads whose name passes <paramref name="thread"/>, by thread and type.</summary>
    public IReadOnlyDictionary<(string Thread, string Type), int> OnThreads(Func<string, bool> thread) =>
        _ticks.Where(t => thread(t.Key.Thread)).ToDictionary(t => t.Key, t => t.Value);

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.PayloadNames is not { } names)
        {
            return;
        }

        var index = names.IndexOf("TypeName");
        var type = index >= 0 ? eventData.Payload![index]?.ToString() ?? "?" : "?";
        var thread = _threadNames.GetOrAdd(eventData.OSThreadId, ThreadName);
        _ticks.AddOrUpdate((thread, type), 1, (_, count) => count + 1);
    }

    private static string ThreadName(long tid)
    {
        try
        {
            return File.ReadAllText($"/proc/self/task/{tid}/comm").TrimEnd('\n');
        }
        catch (IOException)
        {
            return $"thread {tid} (gone)";
        }
    }
}
