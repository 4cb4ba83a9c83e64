namespace Swap.Common.Hosting;

/// <summary>
/// Grows the GC heap once at start to a working size and lets it go again, so the memory the GC hands out later (its
/// regions, and the card-table pages that track references into them) has been touched, and so locked, while memory
/// was plentiful; with <c>System.GC.RetainVM</c> the freed regions stay committed for reuse. Without it, the first
/// use of a region or of its card-table page comes during the swap storm: a page fault on whichever thread
/// allocates or stores a reference, and on a host swapping to this server that fault waits in reclaim for the
/// swap-outs the thread is there to complete (docs/operations.md, "Whole-machine swap").
/// </summary>
public static class GcWarmup
{
    /// <summary>Heap the warm-up grows to: a few times the gen0 budget and what the server allocates after start.</summary>
    public const long DefaultBytes = 16L << 20;

    private const int ChunkBytes = 16 * 1024;

    /// <summary>Allocates <paramref name="bytes"/> in small arrays, promotes them, marks their cards, then frees them; returns the arrays made.</summary>
    public static int Run(long bytes = DefaultBytes)
    {
        var count = (int)Math.Max(1, bytes / ChunkBytes);
        var chunks = new object?[count][];
        for (var i = 0; i < count; i++)
        {
            // Reference arrays, so storing into them later goes through the write barrier and marks their cards.
            chunks[i] = new object?[ChunkBytes / IntPtr.Size];
        }

        // Old now: a store of a young object into them marks a card, touching the card table over every region used.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        var young = new object();
        foreach (var chunk in chunks)
        {
            for (var slot = 0; slot < chunk!.Length; slot += 64)
            {
                chunk[slot] = young;
            }
        }

        Array.Clear(chunks);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return count;
    }
}
