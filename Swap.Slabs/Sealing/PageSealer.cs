using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Swap.Slabs.Sealing;

/// <summary>
/// Seals pages before they leave the server and opens them when they come back. The key is 32 bytes drawn from the
/// OS when the sealer is created, in native memory that is zeroed and freed as soon as the cipher instances hold it;
/// it is never logged, written or sent, and dies with the process (a restarted server serves from its backup disk
/// and releases its old slabs, so it never needs an old key). Every seal takes a fresh version of its page
/// (<see cref="PageVersions"/>), so no (key, nonce) pair is used twice.
/// </summary>
public sealed class PageSealer : IDisposable
{
    public const int KeySize = 32;

    private readonly PageCipherPool _ciphers;

    private PageSealer(long pages, PageCipherAlgorithm algorithm, ReadOnlySpan<byte> key, int instances)
    {
        Algorithm = algorithm;
        Versions = new PageVersions(pages);
        _ciphers = new PageCipherPool(algorithm, key, instances);
    }

    public PageCipherAlgorithm Algorithm { get; }

    /// <summary>Name for logs and the status file.</summary>
    public string AlgorithmName => Algorithm == PageCipherAlgorithm.Aes256Gcm ? "AES-256-GCM" : "ChaCha20-Poly1305";

    public PageVersions Versions { get; }

    /// <summary>Cipher instances (enough that threads sealing at once rarely wait for one).</summary>
    public static int DefaultInstances => Math.Clamp(Environment.ProcessorCount * 4, 8, 256);

    /// <summary>A sealer for an export of <paramref name="pages"/> pages under a new random key.</summary>
    public static unsafe PageSealer Create(long pages, PageCipherAlgorithm? algorithm = null)
    {
        var chosen = algorithm ?? PageCipher.Preferred;
        var key = (byte*)NativeMemory.AllocZeroed(KeySize);
        var span = new Span<byte>(key, KeySize);
        try
        {
            RandomNumberGenerator.Fill(span);
            return new PageSealer(pages, chosen, span, DefaultInstances);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(span);
            NativeMemory.Free(key);
        }
    }

    /// <summary>A sealer under a given key: for golden-byte tests and benchmarks only.</summary>
    internal static PageSealer WithKey(long pages, PageCipherAlgorithm algorithm, ReadOnlySpan<byte> key, int instances = 2) =>
        new(pages, algorithm, key, instances);

    /// <summary>
    /// Seals device pages [<paramref name="firstPage"/>, + n) from <paramref name="plaintext"/> (n × 4096 bytes) into
    /// <paramref name="sealedPages"/> (n × 4112), each under its next version. False if a page has used its last
    /// version: then the run must not leave the server (the caller keeps it on the disk only).
    /// </summary>
    public bool TrySeal(long firstPage, ReadOnlySpan<byte> plaintext, Span<byte> sealedPages)
    {
        var pages = plaintext.Length / SealedPage.PageSize;
        using var lease = _ciphers.Rent();
        var cipher = lease.Cipher;
        for (var i = 0; i < pages; i++)
        {
            var version = Versions.Next(firstPage + i);
            if (version == 0)
            {
                return false;
            }

            cipher.Seal(firstPage + i, version, plaintext.Slice(i * SealedPage.PageSize, SealedPage.PageSize),
                sealedPages.Slice(i * SealedPage.Stride, SealedPage.Stride));
        }

        return true;
    }

    /// <summary>
    /// Opens sealed pages [<paramref name="firstPage"/>, + versions.Length), each as the version given, into
    /// <paramref name="destination"/>, which starts <paramref name="skip"/> bytes into the first page and may end
    /// inside the last (part pages are opened whole into a scratch page, then copied). Returns the index of the
    /// first page that failed to open, or -1 when all opened.
    /// </summary>
    public int Open(long firstPage, ReadOnlySpan<uint> versions, ReadOnlySpan<byte> sealedPages, Span<byte> destination, int skip = 0)
    {
        Span<byte> scratch = stackalloc byte[SealedPage.PageSize];
        using var lease = _ciphers.Rent();
        var cipher = lease.Cipher;
        var position = -skip; // where the current page starts, relative to destination
        for (var i = 0; i < versions.Length && position < destination.Length; i++, position += SealedPage.PageSize)
        {
            var source = sealedPages.Slice(i * SealedPage.Stride, SealedPage.Stride);
            var whole = position >= 0 && position + SealedPage.PageSize <= destination.Length;
            var target = whole ? destination.Slice(position, SealedPage.PageSize) : scratch;
            if (!cipher.TryOpen(firstPage + i, versions[i], source, target))
            {
                return i;
            }

            if (!whole)
            {
                var from = Math.Max(0, -position);
                var to = Math.Min(SealedPage.PageSize, destination.Length - position);
                scratch[from..to].CopyTo(destination[(position + from)..]);
            }
        }

        return -1;
    }

    public void Dispose() => _ciphers.Dispose();
}
