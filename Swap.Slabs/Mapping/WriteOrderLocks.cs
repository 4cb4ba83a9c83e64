namespace Swap.Slabs.Mapping;

/// <summary>
/// Orders writes that overlap: a write holds the stripes of its pages from its disk write until its remote copy is
/// sealed and queued, so two writes of one page reach the disk, take their page versions and enter the daemon's queue
/// in the same order, and the daemon ends up holding what the disk holds, sealed as the version the server expects.
/// (Without it, two overlapping writes on two threads could leave the disk with one and the daemon with the other;
/// NBD leaves the winner of concurrent overlapping writes open, not that the copies differ.) Striped by 64 KiB of the
/// device; writes that do not overlap rarely share a stripe.
/// </summary>
internal sealed class WriteOrderLocks
{
    private const int Stripes = 256;
    private const int StripeShift = 16;
    private readonly Lock[] _locks = new Lock[Stripes];

    public WriteOrderLocks()
    {
        for (var i = 0; i < Stripes; i++)
        {
            _locks[i] = new Lock();
        }
    }

    /// <summary>Takes the stripes of bytes [<paramref name="start"/>, <paramref name="end"/>), lowest stripe first so two callers cannot deadlock.</summary>
    public Held Enter(long start, long end)
    {
        var first = start >> StripeShift;
        var last = (end - 1) >> StripeShift;
        var a = (int)(first & (Stripes - 1));
        var b = (int)(last & (Stripes - 1));
        Held held;
        if (last - first + 1 >= Stripes)
        {
            held = new Held(0, Stripes - 1, -1, -1);
        }
        else if (a <= b)
        {
            held = new Held(a, b, -1, -1);
        }
        else
        {
            // Wrapped past the last stripe: the low run first.
            held = new Held(0, b, a, Stripes - 1);
        }

        for (var i = held.FromA; i <= held.ToA; i++)
        {
            _locks[i].Enter();
        }

        for (var i = held.FromB; i >= 0 && i <= held.ToB; i++)
        {
            _locks[i].Enter();
        }

        return held;
    }

    public void Exit(in Held held)
    {
        for (var i = held.FromB; i >= 0 && i <= held.ToB; i++)
        {
            _locks[i].Exit();
        }

        for (var i = held.FromA; i <= held.ToA; i++)
        {
            _locks[i].Exit();
        }
    }

    /// <summary>Marks the stripes of bytes [<paramref name="start"/>, <paramref name="end"/>) in <paramref name="stripes"/> (256 bits), for <see cref="EnterMarked"/>.</summary>
    public static void Mark(Span<ulong> stripes, long start, long end)
    {
        var first = start >> StripeShift;
        var last = Math.Min((end - 1) >> StripeShift, first + Stripes - 1);
        for (var s = first; s <= last; s++)
        {
            var i = (int)(s & (Stripes - 1));
            stripes[i >> 6] |= 1UL << i;
        }
    }

    /// <summary>The size of a stripe set for <see cref="Mark"/>, in ulongs.</summary>
    public const int StripeSetLength = Stripes / 64;

    /// <summary>Takes every stripe marked in <paramref name="stripes"/>, lowest first (the order <see cref="Enter"/> keeps, so no two callers deadlock).</summary>
    public void EnterMarked(ReadOnlySpan<ulong> stripes)
    {
        for (var i = 0; i < Stripes; i++)
        {
            if ((stripes[i >> 6] & (1UL << i)) != 0)
            {
                _locks[i].Enter();
            }
        }
    }

    public void ExitMarked(ReadOnlySpan<ulong> stripes)
    {
        for (var i = Stripes - 1; i >= 0; i--)
        {
            if ((stripes[i >> 6] & (1UL << i)) != 0)
            {
                _locks[i].Exit();
            }
        }
    }

    /// <summary>The stripes one caller holds: [FromA, ToA] and, when the range wrapped, [FromB, ToB] (else -1).</summary>
    internal readonly record struct Held(int FromA, int ToA, int FromB, int ToB);
}
