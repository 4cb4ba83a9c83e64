using System.Runtime.InteropServices;
using NUnit.Framework;
using Swap.BlockDevices;

namespace Swap.Nbd.Tests.Slabs;

/// <summary>Giving pages back when they are locked (mlockall in the executables refuses MADV_DONTNEED).</summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed unsafe partial class NativeMemoryMapTests
{
    private const nuint Length = 2 << 20;
    private const int MlockOnFault = 1;

    [TestCase(false)]
    [TestCase(true)]
    public void Discarded_pages_read_zero_leave_memory_and_their_neighbours_intact(bool locked)
    {
        var map = NativeMemoryMap.Map(Length);
        try
        {
            var span = new Span<byte>(map, (int)Length);
            span.Fill(0xA5);
            if (locked)
            {
                Assert.That(mlock2(map, Length, MlockOnFault), Is.Zero, $"mlock2: errno {Marshal.GetLastPInvokeError()}");
            }

            NativeMemoryMap.Discard(map + (256 << 10), 1 << 20);

            Assert.That(span[..(256 << 10)].IndexOfAnyExcept((byte)0xA5), Is.EqualTo(-1), "before the range");
            Assert.That(span.Slice(256 << 10, 1 << 20).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "the range reads zero");
            Assert.That(span[((256 << 10) + (1 << 20))..].IndexOfAnyExcept((byte)0xA5), Is.EqualTo(-1), "after the range");

            // Reading the range above faulted its pages in again (the shared zero page, or on some kernels fresh pages),
            // which mincore counts: discard it once more and look before anything reads it.
            NativeMemoryMap.Discard(map + (256 << 10), 1 << 20);
            Assert.That(ResidentPages(map + (256 << 10), 1 << 20), Is.Zero, "the range's pages went back to the kernel");
            Assert.That(ResidentPages(map, 256 << 10), Is.EqualTo(64), "the neighbours' did not");
        }
        finally
        {
            NativeMemoryMap.Unmap(map, Length);
        }
    }

    private static int ResidentPages(byte* address, nuint length)
    {
        var pages = (int)(length / 4096);
        var vector = stackalloc byte[pages];
        Assert.That(mincore(address, length, vector), Is.Zero);
        var resident = 0;
        for (var i = 0; i < pages; i++)
        {
            resident += vector[i] & 1;
        }

        return resident;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mlock2(void* address, nuint length, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mincore(void* address, nuint length, byte* vector);
}
