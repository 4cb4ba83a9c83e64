namespace Swap.Slabs.Mapping;

/// <summary>
/// Counts the writes in progress on each slab in two generations, so a fill can wait for exactly the writes that
/// began before its mapping was published (they may still be writing the disk under the old mapping, and the fill
/// must not copy the disk before they finish). Writes that begin later see the new mapping and mark their pages.
/// </summary>
internal sealed class SlabWriters(int slabs)
{
    private readonly int[] _generation = new int[slabs];
    private readonly int[] _counts = new int[slabs * 2];

    /// <summary>Registers a write; pass the result to <see cref="Exit"/>.</summary>
    public int Enter(int slab)
    {
        while (true)
        {
            var generation = Volatile.Read(ref _generation[slab]);
            Interlocked.Increment(ref _counts[(slab * 2) + generation]);
            if (Volatile.Read(ref _generation[slab]) == generation)
            {
                return generation;
            }

            Interlocked.Decrement(ref _counts[(slab * 2) + generation]);
        }
    }

    public void Exit(int slab, int generation) => Interlocked.Decrement(ref _counts[(slab * 2) + generation]);

    /// <summary>Starts a new generation and waits until every write of the previous one has finished.</summary>
    public async Task DrainAsync(int slab, TimeProvider time, CancellationToken cancellationToken)
    {
        var old = Volatile.Read(ref _generation[slab]);
        Interlocked.Exchange(ref _generation[slab], 1 - old);
        while (Volatile.Read(ref _counts[(slab * 2) + old]) > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(1), time, cancellationToken).ConfigureAwait(false);
        }
    }
}
