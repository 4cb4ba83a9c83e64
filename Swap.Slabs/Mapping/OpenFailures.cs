using Microsoft.Extensions.Logging;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// What happens when a page a daemon returns fails to open (the caller reads it from the backup disk): the page is
/// counted and logged, its slab is unmapped from the daemon (and freed there), and a daemon with
/// <see cref="Strikes"/> slabs failing within <see cref="Window"/> on the injected clock is failed: its link is
/// killed, which unmaps every other slab it holds. Only the failure path comes here; it may allocate.
/// </summary>
internal sealed class OpenFailures(SlabPlacer placer, TimeProvider time, ILogger logger)
{
    /// <summary>Slabs of one daemon whose pages fail to open, within <see cref="Window"/>, that fail the daemon.</summary>
    public const int Strikes = 3;

    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly Lock _lock = new();
    private readonly Dictionary<DaemonEndpoint, Record> _daemons = [];
    private long _pages;

    /// <summary>Page runs that failed to open so far (each read the backup disk instead).</summary>
    public long Count => Interlocked.Read(ref _pages);

    /// <summary>Of <see cref="Count"/>, those returned by <paramref name="daemon"/>.</summary>
    public long CountOf(DaemonEndpoint daemon)
    {
        lock (_lock)
        {
            return _daemons.TryGetValue(daemon, out var record) ? record.Pages : 0;
        }
    }

    /// <summary>Page <paramref name="page"/> (a device page) of <paramref name="slab"/> came back from <paramref name="mapping"/>'s daemon and failed to open.</summary>
    public void Report(int slab, SlabMapping mapping, long page)
    {
        Interlocked.Increment(ref _pages);
        SlabLog.PageOpenFailed(logger, mapping.Daemon.Name, page, slab, mapping.Grant.SlabId);
        var firstOfSlab = mapping.MarkOpenFailed();
        int strikes;
        lock (_lock)
        {
            if (!_daemons.TryGetValue(mapping.Daemon, out var record))
            {
                _daemons[mapping.Daemon] = record = new Record();
            }

            record.Pages++;
            if (!firstOfSlab)
            {
                return;
            }

            var now = time.GetUtcNow();
            record.Recent.Enqueue(now);
            while (record.Recent.Peek() <= now - Window)
            {
                record.Recent.Dequeue();
            }

            strikes = record.Recent.Count;
            if (strikes >= Strikes)
            {
                record.Recent.Clear();
            }
        }

        placer.Unmap(slab, mapping, $"page {page} failed to open (a sealed page this server did not write there)");
        _ = FreeAsync(mapping);
        if (strikes >= Strikes)
        {
            SlabLog.DaemonUntrusted(logger, mapping.Daemon.Name, strikes, Window);
            mapping.Link.Kill($"{strikes} slabs returned pages that fail to open within {Window.TotalSeconds:0} s");
        }
    }

    /// <summary>The daemon's copy is worthless now: give its memory back rather than wait for the next HELLO.</summary>
    private static async Task FreeAsync(SlabMapping mapping)
    {
        try
        {
            await mapping.Link.FreeSlabAsync(mapping.Grant).ConfigureAwait(false);
        }
        catch (DaemonLinkException)
        {
            // Gone with its link; the daemon frees it when this server says HELLO again.
        }
    }

    private sealed class Record
    {
        public long Pages;
        public readonly Queue<DateTimeOffset> Recent = new();
    }
}
