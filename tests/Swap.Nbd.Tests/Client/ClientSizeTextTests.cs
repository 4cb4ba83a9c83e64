using NUnit.Framework;
using Swap.Common.Units;

namespace Swap.Nbd.Tests.Client;

/// <summary>The sizes swapnbd-client prints (info) and reads (bench --bs, --size-limit), which it takes from <see cref="ByteSize"/>.</summary>
[Category(Tier.Unit), Parallelizable(ParallelScope.Self)]
public sealed class ClientSizeTextTests
{
    [TestCase(0L, "0 bytes")]
    [TestCase(1023L, "1023 bytes")]
    [TestCase(1024L, "1 KiB")]
    [TestCase(1536L, "1.5 KiB")]
    [TestCase(64L << 20, "64 MiB")]
    [TestCase((3L << 30) + (1L << 28), "3.25 GiB")]
    [TestCase(1L << 40, "1 TiB")]
    [TestCase(1L << 60, "1 EiB")]
    [TestCase(long.MaxValue, "8 EiB")]
    public void Sizes_print_rounded_in_the_largest_unit(long bytes, string text) =>
        Assert.That(ByteSize.FormatApproximate(bytes), Is.EqualTo(text));

    [TestCase("4k", 4096L)]
    [TestCase(" 64MiB ", 64L << 20)]
    [TestCase("1 g", 1L << 30)]
    [TestCase("7b", 7L)]
    public void Sizes_parse_as_typed(string text, long bytes)
    {
        Assert.That(ByteSize.TryParse(text, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(bytes));
    }
}
