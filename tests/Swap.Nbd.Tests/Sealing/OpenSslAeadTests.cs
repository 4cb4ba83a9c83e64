using NUnit.Framework;
using Swap.Slabs.Sealing;

namespace Swap.Nbd.Tests.Sealing;

/// <summary>
/// <see cref="OpenSslAead"/>, the direct OpenSSL path pages are sealed through, against .NET's own AEAD types
/// (<see cref="PageCipher"/> with and without it): the same sealed bytes for the same page, version and key, each
/// opens what the other sealed, and neither opens an altered byte, another version or another page.
/// </summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class OpenSslAeadTests
{
    [TestCase(PageCipherAlgorithm.Aes256Gcm)]
    [TestCase(PageCipherAlgorithm.ChaCha20Poly1305)]
    public void The_direct_path_seals_the_same_bytes_as_dotnet_and_each_opens_the_others_pages(PageCipherAlgorithm algorithm)
    {
        var key = SealedPageGoldenTests.FixedKey();
        using var direct = new PageCipher(algorithm, key);
        using var managed = new PageCipher(algorithm, key, useOpenSsl: false);
        Assert.That(direct.ViaOpenSsl, Is.True, "libcrypto is on this Linux machine: the direct path must be in use");
        Assert.That(managed.ViaOpenSsl, Is.False);

        var random = new Random(3);
        var plain = new byte[SealedPage.PageSize];
        var fromDirect = new byte[SealedPage.Stride];
        var fromManaged = new byte[SealedPage.Stride];
        var back = new byte[SealedPage.PageSize];
        for (var round = 0; round < 50; round++)
        {
            random.NextBytes(plain);
            var page = random.NextInt64(0, 1L << 40);
            var version = (uint)random.Next(1, int.MaxValue);
            direct.Seal(page, version, plain, fromDirect);
            managed.Seal(page, version, plain, fromManaged);
            Assert.That(fromDirect, Is.EqualTo(fromManaged), $"page {page} version {version}: the same sealed bytes");

            Assert.That(direct.TryOpen(page, version, fromManaged, back), Is.True);
            Assert.That(back, Is.EqualTo(plain));
            Assert.That(managed.TryOpen(page, version, fromDirect, back), Is.True);
            Assert.That(back, Is.EqualTo(plain));

            Assert.That(direct.TryOpen(page, version + 1, fromDirect, back), Is.False, "another version");
            Assert.That(back, Is.All.EqualTo(0), "a page that fails to open leaves nothing of its plaintext");
            Assert.That(direct.TryOpen(page + 1, version, fromDirect, back), Is.False, "another page");
            var at = random.Next(SealedPage.Stride);
            fromDirect[at] ^= 1;
            Assert.That(direct.TryOpen(page, version, fromDirect, back), Is.False, $"byte {at} altered");
            Assert.That(managed.TryOpen(page, version, fromDirect, back), Is.False, $"byte {at} altered (.NET)");
            fromDirect[at] ^= 1;
            Assert.That(direct.TryOpen(page, version, fromDirect, back), Is.True, "and opens again once restored: a failure leaves the context usable");
        }
    }
}
