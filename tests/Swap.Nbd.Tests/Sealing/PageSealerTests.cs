using System.Collections.Concurrent;
using NUnit.Framework;
using Swap.Donor;
using Swap.Slabs.Sealing;

namespace Swap.Nbd.Tests.Sealing;

/// <summary>
/// <see cref="PageSealer"/>: runs of pages sealed under fresh versions and opened as the versions they were sealed
/// with, part pages, the first page that fails, versions that never repeat (also from many threads at once) and run
/// out, two sealers with two keys; and the daemon taking a sealed slab's size.
/// </summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class PageSealerTests
{
    private const int Pages = 5;
    private const long FirstPage = 10;

    [TestCase(PageCipherAlgorithm.Aes256Gcm)]
    [TestCase(PageCipherAlgorithm.ChaCha20Poly1305)]
    public void A_run_opens_as_the_versions_it_was_sealed_with_and_an_older_copy_does_not_open_as_the_current_ones(PageCipherAlgorithm algorithm)
    {
        using var sealer = PageSealer.WithKey(64, algorithm, SealedPageGoldenTests.FixedKey());
        var plain = RandomBytes(1, Pages * 4096);
        var first = new byte[Pages * SealedPage.Stride];
        Assert.That(sealer.TrySeal(FirstPage, plain, first), Is.True);
        var versions = new uint[Pages];
        sealer.Versions.Snapshot(FirstPage, versions);
        Assert.That(versions, Is.All.EqualTo(1u), "the first seal of a page is version 1");

        var back = new byte[plain.Length];
        Assert.That(sealer.Open(FirstPage, versions, first, back), Is.EqualTo(-1));
        Assert.That(back, Is.EqualTo(plain));

        // Sealed again (rewritten): the first copy is a replay now.
        var second = new byte[first.Length];
        Assert.That(sealer.TrySeal(FirstPage, RandomBytes(2, plain.Length), second), Is.True);
        var current = new uint[Pages];
        sealer.Versions.Snapshot(FirstPage, current);
        Assert.That(current, Is.All.EqualTo(2u));
        Assert.That(sealer.Open(FirstPage, current, first, back), Is.EqualTo(0), "the older copy fails at its first page");
        Assert.That(sealer.Open(FirstPage, current, second, back), Is.EqualTo(-1));
        Assert.That(sealer.Open(FirstPage + 1, current, second, back), Is.EqualTo(0), "the same pages named one page further");
    }

    [Test]
    public void Part_pages_open_whole_and_only_the_asked_bytes_are_written()
    {
        using var sealer = PageSealer.WithKey(64, PageCipherAlgorithm.Aes256Gcm, SealedPageGoldenTests.FixedKey());
        var plain = RandomBytes(3, Pages * 4096);
        var sealedPages = new byte[Pages * SealedPage.Stride];
        Assert.That(sealer.TrySeal(FirstPage, plain, sealedPages), Is.True);
        var versions = new uint[Pages];
        sealer.Versions.Snapshot(FirstPage, versions);

        const int Skip = 100;
        const int Length = (3 * 4096) + 50 - Skip; // ends inside page 3
        var destination = new byte[Length + 2];
        Array.Fill(destination, (byte)0xEE);
        Assert.That(sealer.Open(FirstPage, versions, sealedPages, destination.AsSpan(0, Length), Skip), Is.EqualTo(-1));
        Assert.Multiple(() =>
        {
            Assert.That(destination.AsSpan(0, Length).ToArray(), Is.EqualTo(plain.AsSpan(Skip, Length).ToArray()));
            Assert.That(destination.AsSpan(Length).ToArray(), Is.All.EqualTo((byte)0xEE), "nothing past the asked bytes");
        });
    }

    [Test]
    public void Open_names_the_first_page_that_fails()
    {
        using var sealer = PageSealer.WithKey(64, PageCipherAlgorithm.Aes256Gcm, SealedPageGoldenTests.FixedKey());
        var sealedPages = new byte[Pages * SealedPage.Stride];
        Assert.That(sealer.TrySeal(FirstPage, RandomBytes(4, Pages * 4096), sealedPages), Is.True);
        var versions = new uint[Pages];
        sealer.Versions.Snapshot(FirstPage, versions);
        sealedPages[(3 * SealedPage.Stride) + 17] ^= 0x10;
        Assert.That(sealer.Open(FirstPage, versions, sealedPages, new byte[Pages * 4096]), Is.EqualTo(3));
    }

    [Test]
    public void A_page_at_its_last_version_is_never_sealed_again()
    {
        using var sealer = PageSealer.WithKey(64, PageCipherAlgorithm.Aes256Gcm, SealedPageGoldenTests.FixedKey());
        sealer.Versions.Set(FirstPage + 2, uint.MaxValue - 1);
        var sealedPages = new byte[Pages * SealedPage.Stride];
        Assert.That(sealer.TrySeal(FirstPage, RandomBytes(5, Pages * 4096), sealedPages), Is.True, "version uint.MaxValue is the last one used");
        Assert.That(sealer.Versions.Current(FirstPage + 2), Is.EqualTo(uint.MaxValue));
        Assert.That(sealer.TrySeal(FirstPage, RandomBytes(6, Pages * 4096), sealedPages), Is.False, "no version is left for page 12: the run stays on the disk");
        Assert.Multiple(() =>
        {
            Assert.That(sealer.Versions.Next(FirstPage + 2), Is.Zero);
            Assert.That(sealer.Versions.Current(FirstPage + 2), Is.EqualTo(uint.MaxValue), "it does not wrap to a version used before");
        });
    }

    [Test]
    [CancelAfter(30_000)]
    public void Versions_taken_from_many_threads_at_once_never_repeat()
    {
        var versions = new PageVersions(4);
        var taken = new ConcurrentBag<uint>();
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ =>
        {
            for (var i = 0; i < 5000; i++)
            {
                taken.Add(versions.Next(1));
            }
        });
        Assert.That(taken.Distinct().Count(), Is.EqualTo(40_000));
        Assert.That(versions.Current(1), Is.EqualTo(40_000u));
    }

    [Test]
    [CancelAfter(60_000)]
    public void Threads_sealing_and_opening_at_once_share_two_cipher_instances_safely()
    {
        using var sealer = PageSealer.WithKey(1024, PageCipherAlgorithm.Aes256Gcm, SealedPageGoldenTests.FixedKey(), instances: 2);
        var failures = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, thread =>
        {
            var plain = RandomBytes(thread, 4 * 4096);
            var sealedPages = new byte[4 * SealedPage.Stride];
            var back = new byte[plain.Length];
            var versions = new uint[4];
            for (var i = 0; i < 500; i++)
            {
                var page = thread * 100; // each thread its own pages: versions stay its own
                if (!sealer.TrySeal(page, plain, sealedPages))
                {
                    Interlocked.Increment(ref failures);
                }

                sealer.Versions.Snapshot(page, versions);
                if (sealer.Open(page, versions, sealedPages, back) != -1 || !back.AsSpan().SequenceEqual(plain))
                {
                    Interlocked.Increment(ref failures);
                }
            }
        });
        Assert.That(failures, Is.Zero);
    }

    [Test]
    public void Two_sealers_draw_two_keys()
    {
        using var one = PageSealer.Create(16);
        using var other = PageSealer.Create(16, one.Algorithm);
        var sealedPage = new byte[SealedPage.Stride];
        Assert.That(one.TrySeal(3, RandomBytes(7, 4096), sealedPage), Is.True);
        Assert.That(other.TrySeal(3, RandomBytes(8, 4096), new byte[SealedPage.Stride]), Is.True, "same page, same version on the other");
        Assert.That(other.Open(3, [1u], sealedPage, new byte[4096]), Is.EqualTo(0), "the other server's key does not open it");
        Assert.That(one.Open(3, [1u], sealedPage, new byte[4096]), Is.EqualTo(-1));
    }

    [TestCase(1L << 20, true)]
    [TestCase((1L << 20) / 256 * 257, true)]
    [TestCase((16L << 30) / 256 * 257, true)]
    [TestCase((32L << 30) / 256 * 257, false)]
    [TestCase((512L << 10) / 256 * 257, false)]
    [TestCase((1L << 20) + 4096 + 1, false)]
    [TestCase(3L << 20, false)]
    public void The_daemon_takes_a_sealed_slab_of_a_size_it_takes_plain(long size, bool accepted) =>
        Assert.That(new DonorOptions().AcceptsSlabSize((ulong)size), Is.EqualTo(accepted));

    private static byte[] RandomBytes(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
