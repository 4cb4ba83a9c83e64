namespace Swap.Slabs.Sealing;

/// <summary>The AEAD that seals pages: AES-256-GCM where the CPU has AES instructions, ChaCha20-Poly1305 otherwise.</summary>
public enum PageCipherAlgorithm
{
    Aes256Gcm,
    ChaCha20Poly1305,
}
