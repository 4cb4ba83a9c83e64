using NUnit.Framework;
using Swap.BlockDevices;

namespace Swap.Nbd.Tests.Slabs;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class SparseMemoryDeviceWritableSpanTests
{
    [Test]
    public void Writable_span_stops_at_the_chunk_end_and_counts_its_pages()
    {
        using var device = new SparseMemoryDevice(8L << 20);
        var offset = (2L << 20) - 4096;
        var first = device.WritableSpan(offset, 3 * 4096);
        Assert.That(first.Length, Is.EqualTo(4096), "cut at the 2 MiB chunk boundary");
        first.Fill(0xAB);
        var second = device.WritableSpan(offset + first.Length, 2 * 4096);
        Assert.That(second.Length, Is.EqualTo(2 * 4096));
        second.Fill(0xCD);
        Assert.That(device.AllocatedBytes, Is.EqualTo(3 * 4096));

        var back = new byte[3 * 4096];
        device.TryRead(offset, back);
        Assert.That(back.AsSpan(0, 4096).IndexOfAnyExcept((byte)0xAB), Is.EqualTo(-1));
        Assert.That(back.AsSpan(4096).IndexOfAnyExcept((byte)0xCD), Is.EqualTo(-1));
        Assert.That(device.WritableSpan(0, 0).Length, Is.Zero);
        Assert.Throws<BlockDeviceException>(() => device.WritableSpan(8L << 20, 1));
    }
}
