using NUnit.Framework;
using Swap.Slabs.Sealing;

namespace Swap.Nbd.Tests.Sealing;

/// <summary>
/// The sealed page format, byte for byte: nonce and associated data layout, and one page sealed under a fixed key as
/// a given version of a given page, with both AEADs. The expected bytes were computed independently (Python's
/// cryptography package: AESGCM and ChaCha20Poly1305 over the same key, nonce, associated data and plaintext).
/// </summary>
[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class SealedPageGoldenTests
{
    private const long Page = 0x12345;
    private const uint Version = 7;

    /// <summary>Key bytes 00 01 … 1F.</summary>
    internal static byte[] FixedKey() => Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    /// <summary>Byte i of the page is (7i + 3) mod 256.</summary>
    internal static byte[] FixedPage() => Enumerable.Range(0, 4096).Select(i => (byte)((i * 7) + 3)).ToArray();

    [Test]
    public void Geometry_is_4096_bytes_of_ciphertext_then_a_16_byte_tag_at_a_stride_of_4112()
    {
        Assert.Multiple(() =>
        {
            Assert.That(SealedPage.Stride, Is.EqualTo(4112));
            Assert.That(SealedPage.DonorOffset(3), Is.EqualTo(3 * 4112));
            Assert.That(SealedPage.DonorSlabSize(1L << 20), Is.EqualTo((1L << 20) + 4096), "1 MiB of pages: 256 tags more");
            Assert.That(SealedPage.DonorSlabSize(1L << 30), Is.EqualTo((1L << 30) / 256 * 257));
        });
    }

    [Test]
    public void Nonce_is_the_page_then_the_version_and_the_associated_data_prefixes_the_domain_tag()
    {
        var nonce = new byte[SealedPage.NonceSize];
        SealedPage.WriteNonce(nonce, Page, Version);
        Assert.That(Convert.ToHexString(nonce), Is.EqualTo("0000000000012345" + "00000007"));

        var associatedData = new byte[SealedPage.AssociatedDataSize];
        SealedPage.WriteAssociatedData(associatedData, Page, Version);
        Assert.That(Convert.ToHexString(associatedData), Is.EqualTo(
            "537761704E6264207061676520763100" /* "SwapNbd page v1\0" */ + "0000000000012345" + "00000007"));
    }

    [TestCase(PageCipherAlgorithm.Aes256Gcm,
        "3BE0A8BD893E6C2053527EAD32B66F5E1876704800D83EDD9989820E7F2398F4", "93EB6B78AF0924C53658E76745CBD6F5", "F71BA1F7F5544163B3E793C694A58D38")]
    [TestCase(PageCipherAlgorithm.ChaCha20Poly1305,
        "CF690F3B8F443C8E4DCF4E58FCB5F4E3132F56B620F548BE203A784E39CF75DC", "2EA11FD17C06F471A4FBE611E9F25969", "257DB878599DC8CA2E8152C6A65B22F1")]
    public void A_page_sealed_under_a_fixed_key(PageCipherAlgorithm algorithm, string ciphertextStart, string ciphertextEnd, string tag)
    {
        using var cipher = new PageCipher(algorithm, FixedKey());
        var sealedPage = new byte[SealedPage.Stride];
        cipher.Seal(Page, Version, FixedPage(), sealedPage);
        Assert.Multiple(() =>
        {
            Assert.That(Convert.ToHexString(sealedPage, 0, 32), Is.EqualTo(ciphertextStart));
            Assert.That(Convert.ToHexString(sealedPage, 4096 - 16, 16), Is.EqualTo(ciphertextEnd));
            Assert.That(Convert.ToHexString(sealedPage, 4096, 16), Is.EqualTo(tag));
        });

        var back = new byte[4096];
        Assert.That(cipher.TryOpen(Page, Version, sealedPage, back), Is.True);
        Assert.That(back, Is.EqualTo(FixedPage()));
    }

    [TestCase(PageCipherAlgorithm.Aes256Gcm)]
    [TestCase(PageCipherAlgorithm.ChaCha20Poly1305)]
    public void Open_refuses_another_place_another_version_another_key_a_flipped_bit_and_zeros(PageCipherAlgorithm algorithm)
    {
        using var cipher = new PageCipher(algorithm, FixedKey());
        var sealedPage = new byte[SealedPage.Stride];
        cipher.Seal(Page, Version, FixedPage(), sealedPage);
        var otherKey = FixedKey();
        otherKey[0] ^= 1;
        using var stranger = new PageCipher(algorithm, otherKey);
        var back = new byte[4096];

        Assert.Multiple(() =>
        {
            Assert.That(cipher.TryOpen(Page + 1, Version, sealedPage, back), Is.False, "another page");
            Assert.That(cipher.TryOpen(Page, Version - 1, sealedPage, back), Is.False, "an older version");
            Assert.That(cipher.TryOpen(Page, Version + 1, sealedPage, back), Is.False, "a newer version");
            Assert.That(stranger.TryOpen(Page, Version, sealedPage, back), Is.False, "another server's key");
            Assert.That(cipher.TryOpen(Page, Version, new byte[SealedPage.Stride], back), Is.False, "zeros");
            foreach (var bit in new[] { 0, 8 * 2048 + 5, 8 * 4095 + 7, 8 * 4096, 8 * 4111 + 7 })
            {
                var flipped = (byte[])sealedPage.Clone();
                flipped[bit / 8] ^= (byte)(1 << (bit % 8));
                Assert.That(cipher.TryOpen(Page, Version, flipped, back), Is.False, $"bit {bit} flipped");
            }

            Assert.That(cipher.TryOpen(Page, Version, sealedPage, back), Is.True, "the page itself still opens");
        });
    }
}
