using System.Diagnostics;

namespace Swap.MemTest;

/// <summary>
/// The workload over one anonymous region: fill every page, touch random pages (verify, bump the version, rewrite),
/// verify every page. Versions live in a second anonymous region (4 bytes a page), so they swap like the data.
/// </summary>
public sealed class MemTestRun : IDisposable
{
    private readonly AnonymousMemory _versions;
    private ulong _touchState;
    private long _longestPageTicks;

    public MemTestRun(long size, ulong seed)
    {
        if (size <= 0 || size % PagePattern.PageSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "a positive multiple of 4096");
        }

        Seed = seed;
        Pages = size / PagePattern.PageSize;
        Memory = new AnonymousMemory(size);
        try
        {
            _versions = new AnonymousMemory((Pages * sizeof(uint) + PagePattern.PageSize - 1) / PagePattern.PageSize * PagePattern.PageSize);
        }
        catch
        {
            Memory.Dispose();
            throw;
        }

        _touchState = SplitMix64.Mix(seed ^ 0x746F75636865735F); // the touch sequence is its own stream of the seed
    }

    public ulong Seed { get; }

    public long Pages { get; }

    /// <summary>The pages under test.</summary>
    public AnonymousMemory Memory { get; }

    public long Touches { get; private set; }

    public long Mismatches { get; private set; }

    /// <summary>
    /// The longest the workload waited on one page (a fill, a touch or a check), swap-ins and the reclaim a page's
    /// fault ran into included: what a stalled swap device costs a swapping process.
    /// </summary>
    public TimeSpan LongestPage => Stopwatch.GetElapsedTime(0, _longestPageTicks);

    /// <summary>The first page found wrong, as a sentence naming it; null while every page checked out.</summary>
    public string? FirstMismatch { get; private set; }

    /// <summary>Writes version 0 of every page.</summary>
    public void Fill()
    {
        for (long page = 0; page < Pages; page++)
        {
            var start = Stopwatch.GetTimestamp();
            _versions.Word(page) = 0;
            PagePattern.Fill(Memory.Page(page), Seed, page, 0);
            Took(start);
        }
    }

    /// <summary><paramref name="count"/> random pages: each is verified, then rewritten with its next version.</summary>
    public void Touch(long count)
    {
        for (long i = 0; i < count; i++)
        {
            var page = SplitMix64.NextBelow(ref _touchState, Pages);
            var start = Stopwatch.GetTimestamp();
            ref var version = ref _versions.Word(page);
            Check(page, version, "on touch");
            version++;
            PagePattern.Fill(Memory.Page(page), Seed, page, version);
            Took(start);
            Touches++;
        }
    }

    /// <summary>Checks every page against its current version.</summary>
    public void VerifyAll()
    {
        for (long page = 0; page < Pages; page++)
        {
            var start = Stopwatch.GetTimestamp();
            Check(page, _versions.Word(page), "on the full verify");
            Took(start);
        }
    }

    private void Took(long start)
    {
        var ticks = Stopwatch.GetTimestamp() - start;
        if (ticks > _longestPageTicks)
        {
            _longestPageTicks = ticks;
        }
    }

    private void Check(long page, uint version, string when)
    {
        var check = PagePattern.Verify(Memory.Page(page), Seed, page, version);
        if (check.IsOk)
        {
            return;
        }

        Mismatches++;
        FirstMismatch ??= $"page {page} (offset 0x{page * PagePattern.PageSize:x}) {check.Describe(Seed, page, version)}, found {when}";
    }

    public void Dispose()
    {
        Memory.Dispose();
        _versions.Dispose();
    }
}
