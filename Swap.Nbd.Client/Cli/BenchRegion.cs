namespace Swap.Nbd.Client.Cli;

/// <summary>The part of the export a benchmark touches, in whole blocks, with a shared cursor for sequential modes.</summary>
internal sealed class BenchRegion(long blocks, int blockSize)
{
    private long _cursor = -1;

    public long Blocks { get; } = blocks;

    public long NextSequential() => Interlocked.Increment(ref _cursor) % Blocks * blockSize;
}
