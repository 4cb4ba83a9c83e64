using System.Buffers.Binary;

namespace Swap.Slabs.Sealing;

/// <summary>
/// The sealed page format a donor stores: each 4096-byte page as 4096 bytes of AEAD ciphertext followed by its
/// 16-byte tag, page p of a slab at p × <see cref="Stride"/>, so a run of pages stays one contiguous donor range.
/// Nonce = device page number (u64, big-endian) ‖ write version (u32, big-endian); associated data =
/// <see cref="DomainTag"/> ‖ the same 12 bytes. Pure functions over spans; docs/security.md describes the format.
/// </summary>
public static class SealedPage
{
    public const int PageSize = 4096;
    public const int TagSize = 16;

    /// <summary>Bytes a sealed page takes on the donor and on the wire.</summary>
    public const int Stride = PageSize + TagSize;

    public const int NonceSize = 12;

    /// <summary>Associated data: the domain tag, then the nonce's 12 bytes.</summary>
    public const int AssociatedDataSize = 16 + NonceSize;

    /// <summary>Separates sealed pages from anything else a key might ever authenticate (16 bytes).</summary>
    public static ReadOnlySpan<byte> DomainTag => "SwapNbd page v1\0"u8;

    /// <summary>Where page <paramref name="pageInSlab"/> of a slab starts on the donor.</summary>
    public static long DonorOffset(long pageInSlab) => pageInSlab * Stride;

    /// <summary>Donor bytes of a slab of <paramref name="slabSize"/> bytes (a multiple of 4096): slabSize × 257/256.</summary>
    public static long DonorSlabSize(long slabSize) => slabSize / PageSize * Stride;

    /// <summary>The 12-byte nonce of version <paramref name="version"/> of device page <paramref name="page"/>.</summary>
    public static void WriteNonce(Span<byte> nonce, long page, uint version)
    {
        BinaryPrimitives.WriteUInt64BigEndian(nonce, (ulong)page);
        BinaryPrimitives.WriteUInt32BigEndian(nonce[8..], version);
    }

    /// <summary>The 28 bytes of associated data for version <paramref name="version"/> of device page <paramref name="page"/>.</summary>
    public static void WriteAssociatedData(Span<byte> associatedData, long page, uint version)
    {
        DomainTag.CopyTo(associatedData);
        WriteNonce(associatedData[16..], page, version);
    }
}
