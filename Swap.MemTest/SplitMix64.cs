namespace Swap.MemTest;

/// <summary>SplitMix64 (Steele, Lea, Flood 2014): the page pattern's stream and the random page choice; fixed so a seed reproduces a run.</summary>
public static class SplitMix64
{
    private const ulong Gamma = 0x9E3779B97F4A7C15;

    public static ulong Next(ref ulong state)
    {
        state += Gamma;
        return Mix(state);
    }

    /// <summary>The finaliser alone: a bijection that spreads every input bit over the output.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform integer in [0, bound) (Lemire's multiply-shift; the bias for bound ≪ 2^64 is negligible here).</summary>
    public static long NextBelow(ref ulong state, long bound) => (long)Math.BigMul(Next(ref state), (ulong)bound, out _);
}
