using System.Security.Cryptography;

namespace Swap.Slabs.Sealing;

/// <summary>
/// One AEAD instance under the server's key that seals and opens single pages in the <see cref="SealedPage"/>
/// format. Not safe for concurrent use (on Linux each instance is one OpenSSL context: dotnet/runtime#53320), so
/// <see cref="PageCipherPool"/> lends it to one thread at a time.
/// </summary>
internal sealed class PageCipher : IDisposable
{
    private readonly OpenSslAead? _native;
    private readonly AesGcm? _aes;
    private readonly ChaCha20Poly1305? _chacha;

    /// <param name="useOpenSsl">Through OpenSSL's EVP calls directly where it can be loaded (<see cref="OpenSslAead"/>:
    /// the same bytes at a lower cost per page); false always uses the .NET types (tests compare the two).</param>
    public PageCipher(PageCipherAlgorithm algorithm, ReadOnlySpan<byte> key, bool useOpenSsl = true)
    {
        _native = useOpenSsl ? OpenSslAead.TryCreate(algorithm, key) : null;
        if (_native is not null)
        {
            return;
        }

        if (algorithm == PageCipherAlgorithm.Aes256Gcm)
        {
            _aes = new AesGcm(key, SealedPage.TagSize);
        }
        else
        {
            _chacha = new ChaCha20Poly1305(key);
        }
    }

    /// <summary>
    /// AES-256-GCM when the CPU has AES instructions and the platform's AES-GCM is available, else
    /// ChaCha20-Poly1305 (faster in software, constant-time without AES-NI), else AES-GCM in whatever form exists.
    /// </summary>
    public static PageCipherAlgorithm Preferred
    {
        get
        {
            var aesInstructions = System.Runtime.Intrinsics.X86.Aes.IsSupported || System.Runtime.Intrinsics.Arm.Aes.IsSupported;
            if (aesInstructions && AesGcm.IsSupported)
            {
                return PageCipherAlgorithm.Aes256Gcm;
            }

            if (ChaCha20Poly1305.IsSupported)
            {
                return PageCipherAlgorithm.ChaCha20Poly1305;
            }

            return AesGcm.IsSupported
                ? PageCipherAlgorithm.Aes256Gcm
                : throw new PlatformNotSupportedException("neither AES-GCM nor ChaCha20-Poly1305 is available: pages cannot be sealed (SealPages false runs without)");
        }
    }

    /// <summary>Seals version <paramref name="version"/> of device page <paramref name="page"/> into <paramref name="sealedPage"/> (ciphertext then tag).</summary>
    public void Seal(long page, uint version, ReadOnlySpan<byte> plaintext, Span<byte> sealedPage)
    {
        Span<byte> associatedData = stackalloc byte[SealedPage.AssociatedDataSize];
        SealedPage.WriteAssociatedData(associatedData, page, version);
        var nonce = associatedData[^SealedPage.NonceSize..];
        var ciphertext = sealedPage[..SealedPage.PageSize];
        var tag = sealedPage.Slice(SealedPage.PageSize, SealedPage.TagSize);
        if (_native is not null)
        {
            _native.Seal(nonce, plaintext[..SealedPage.PageSize], ciphertext, tag, associatedData);
        }
        else if (_aes is not null)
        {
            _aes.Encrypt(nonce, plaintext[..SealedPage.PageSize], ciphertext, tag, associatedData);
        }
        else
        {
            _chacha!.Encrypt(nonce, plaintext[..SealedPage.PageSize], ciphertext, tag, associatedData);
        }
    }

    /// <summary>
    /// Opens a sealed page as version <paramref name="version"/> of device page <paramref name="page"/>; false (and
    /// <paramref name="plaintext"/> cleared) when the tag does not match: another page, version, key, or altered bytes.
    /// </summary>
    public bool TryOpen(long page, uint version, ReadOnlySpan<byte> sealedPage, Span<byte> plaintext)
    {
        Span<byte> associatedData = stackalloc byte[SealedPage.AssociatedDataSize];
        SealedPage.WriteAssociatedData(associatedData, page, version);
        var nonce = associatedData[^SealedPage.NonceSize..];
        var ciphertext = sealedPage[..SealedPage.PageSize];
        var tag = sealedPage.Slice(SealedPage.PageSize, SealedPage.TagSize);
        if (_native is not null)
        {
            return _native.TryOpen(nonce, ciphertext, tag, plaintext[..SealedPage.PageSize], associatedData);
        }

        try
        {
            if (_aes is not null)
            {
                _aes.Decrypt(nonce, ciphertext, tag, plaintext[..SealedPage.PageSize], associatedData);
            }
            else
            {
                _chacha!.Decrypt(nonce, ciphertext, tag, plaintext[..SealedPage.PageSize], associatedData);
            }

            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            // Only ever on a page this server did not seal as this version: the rare path, allowed to allocate.
            return false;
        }
    }

    /// <summary>True when pages go through <see cref="OpenSslAead"/>.</summary>
    public bool ViaOpenSsl => _native is not null;

    public void Dispose()
    {
        _native?.Dispose();
        _aes?.Dispose();
        _chacha?.Dispose();
    }
}
