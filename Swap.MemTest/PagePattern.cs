using System.Runtime.InteropServices;

namespace Swap.MemTest;

/// <summary>
/// The content of one 4 KiB page as a pure function of (seed, page index, version): a header naming all three, then
/// 4064 bytes of SplitMix64 output, so a page that comes back from swap wrong says whose data it holds instead.
/// </summary>
public static class PagePattern
{
    public const int PageSize = 4096;

    /// <summary>"SWAPMEMT" as a little-endian word: a page without it never held a pattern (zeros, garbage).</summary>
    public const ulong Magic = 0x544D454D50415753;

    private const int Words = PageSize / sizeof(ulong);
    private const int HeaderWords = 4;

    public static void Fill(Span<byte> page, ulong seed, long index, uint version)
    {
        var words = AsWords(page);
        words[0] = Magic;
        words[1] = seed;
        words[2] = (ulong)index;
        words[3] = version;
        var state = StreamStart(seed, index, version);
        for (var i = HeaderWords; i < Words; i++)
        {
            words[i] = SplitMix64.Next(ref state);
        }
    }

    /// <summary>Checks a page against what <see cref="Fill"/> wrote; on a mismatch says what the page holds instead.</summary>
    public static PageCheck Verify(ReadOnlySpan<byte> page, ulong seed, long index, uint version)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(page);
        if (words.Length != Words)
        {
            throw new ArgumentException($"a page is {PageSize} bytes", nameof(page));
        }

        var header = new PageHeader(words[0] == Magic, words[1], (long)words[2], (uint)words[3]);
        if (!header.HasMagic || header.Seed != seed || header.Index != index || header.Version != version)
        {
            return PageCheck.Mismatch(header, 0, page.IndexOfAnyExcept((byte)0) < 0);
        }

        var state = StreamStart(seed, index, version);
        for (var i = HeaderWords; i < Words; i++)
        {
            if (words[i] != SplitMix64.Next(ref state))
            {
                return PageCheck.Mismatch(header, i * sizeof(ulong), zero: false);
            }
        }

        return PageCheck.Ok;
    }

    private static Span<ulong> AsWords(Span<byte> page)
    {
        if (page.Length != PageSize)
        {
            throw new ArgumentException($"a page is {PageSize} bytes", nameof(page));
        }

        return MemoryMarshal.Cast<byte, ulong>(page);
    }

    // Distinct (seed, index, version) triples start distinct streams: each is folded in through a full mix.
    private static ulong StreamStart(ulong seed, long index, uint version)
    {
        var state = seed;
        state = SplitMix64.Mix(state ^ (ulong)index);
        return SplitMix64.Mix(state ^ version);
    }
}
