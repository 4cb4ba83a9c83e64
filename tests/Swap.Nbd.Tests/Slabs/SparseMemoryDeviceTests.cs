using NUnit.Framework;
using Swap.BlockDevices;

namespace Swap.Nbd.Tests.Slabs;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class SparseMemoryDeviceTests
{
    [Test]
    public void A_64_GiB_device_commits_nothing_until_written()
    {
        using var device = new SparseMemoryDevice(64L << 30);
        Assert.That(device.AllocatedBytes, Is.Zero);
        var data = new byte[8192];
        Random.Shared.NextBytes(data);
        Assert.That(device.TryWrite((63L << 30) + 100, data, fua: false), Is.True);
        Assert.That(device.AllocatedBytes, Is.EqualTo(3 * SparseMemoryDevice.PageSize), "an unaligned 8 KiB write touches 3 pages");
        var back = new byte[8192];
        Assert.That(device.TryRead((63L << 30) + 100, back), Is.True);
        Assert.That(back, Is.EqualTo(data));
    }

    [Test]
    public void Unwritten_ranges_read_as_zero()
    {
        using var device = new SparseMemoryDevice(1 << 20);
        var back = new byte[5000];
        back.AsSpan().Fill(0xff);
        device.TryRead(7, back);
        Assert.That(back, Is.All.EqualTo(0));
    }

    [Test]
    public async Task Trim_gives_whole_pages_back_and_keeps_partial_ones()
    {
        using var device = new SparseMemoryDevice(1 << 20);
        var data = new byte[4 * SparseMemoryDevice.PageSize];
        data.AsSpan().Fill(7);
        device.TryWrite(0, data, false);
        await device.TrimAsync(100, (3 * SparseMemoryDevice.PageSize) - 100, fua: false, CancellationToken.None);
        Assert.That(device.AllocatedBytes, Is.EqualTo(2 * SparseMemoryDevice.PageSize), "pages 1 and 2 freed, 0 and 3 kept");
    }

    [Test]
    public async Task Write_zeroes_reads_back_zero_and_no_hole_keeps_pages()
    {
        using var device = new SparseMemoryDevice(1 << 20);
        var data = new byte[3 * SparseMemoryDevice.PageSize];
        data.AsSpan().Fill(9);
        device.TryWrite(0, data, false);
        await device.WriteZeroesAsync(10, 2 * SparseMemoryDevice.PageSize, noHole: true, fastOnly: false, fua: false, CancellationToken.None);
        Assert.That(device.AllocatedBytes, Is.EqualTo(3 * SparseMemoryDevice.PageSize));
        await device.WriteZeroesAsync(SparseMemoryDevice.PageSize, SparseMemoryDevice.PageSize, noHole: false, fastOnly: true, fua: false, CancellationToken.None);
        Assert.That(device.AllocatedBytes, Is.EqualTo(2 * SparseMemoryDevice.PageSize));
        var back = new byte[data.Length];
        device.TryRead(0, back);
        Assert.That(back.AsSpan(0, 10).ToArray(), Is.All.EqualTo(9));
        Assert.That(back.AsSpan(10, 2 * SparseMemoryDevice.PageSize).ToArray(), Is.All.EqualTo(0));
        Assert.That(back.AsSpan(10 + (2 * SparseMemoryDevice.PageSize)).ToArray(), Is.All.EqualTo(9));
    }

    [Test]
    public void Allocation_reports_data_and_holes()
    {
        using var device = new SparseMemoryDevice(16L << 20);
        device.TryWrite(8192, new byte[4096], false);
        var extents = new AllocationExtent[8];
        var n = device.GetAllocation(0, 16 << 20, extents);
        Assert.That(extents[..n], Is.EqualTo(new[]
        {
            new AllocationExtent(8192, true, true),
            new AllocationExtent(4096, false, false),
            new AllocationExtent((16 << 20) - 12288, true, true),
        }));
        Assert.That(device.GetAllocation(0, 16 << 20, extents.AsSpan(0, 1)), Is.EqualTo(1));
    }

    [Test]
    public void Out_of_range_access_throws_invalid()
    {
        using var device = new SparseMemoryDevice(1 << 20);
        var ex = Assert.Throws<BlockDeviceException>(() => device.TryRead((1 << 20) - 10, new byte[11]));
        Assert.That(ex!.Error, Is.EqualTo(BlockDeviceError.Invalid));
    }

    [Test]
    public void Concurrent_writers_and_trimmers_never_corrupt_memory()
    {
        using var device = new SparseMemoryDevice(4 << 20);
        Parallel.For(0, 4, worker =>
        {
            var rng = new Random(worker);
            var buffer = new byte[16384];
            for (var i = 0; i < 2000; i++)
            {
                var offset = rng.NextInt64(0, (4 << 20) - buffer.Length);
                switch (rng.Next(3))
                {
                    case 0: device.TryWrite(offset, buffer, false); break;
                    case 1: device.TryRead(offset, buffer); break;
                    default: device.TrimAsync(offset, buffer.Length, false, CancellationToken.None).AsTask().Wait(); break;
                }
            }
        });
        Assert.That(device.AllocatedBytes, Is.LessThanOrEqualTo(4 << 20));
    }
}
