using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>
/// HELLO reply body, version 2: u16 version, u16 reserved, u32 max slabs for this client, u64 daemon id, the daemon's
/// nonce [32], the daemon's proof [32] (80 bytes). Nonce and proof live in the caller's spans.
/// </summary>
public readonly record struct DaemonWelcome(ushort Version, uint MaxSlabs, ulong DaemonId)
{
    public const int Size = 80;

    private const int NonceOffset = 16;
    private const int ProofOffset = NonceOffset + DaemonAuthProof.NonceSize;

    public void Write(Span<byte> destination, ReadOnlySpan<byte> daemonNonce, ReadOnlySpan<byte> daemonProof)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Version);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], MaxSlabs);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], DaemonId);
        daemonNonce[..DaemonAuthProof.NonceSize].CopyTo(destination[NonceOffset..]);
        daemonProof[..DaemonAuthProof.Size].CopyTo(destination[ProofOffset..]);
    }

    /// <summary>Reads exactly <see cref="Size"/> bytes; nonce and proof are copied out.</summary>
    public static DaemonWelcome Read(ReadOnlySpan<byte> body, Span<byte> daemonNonce, Span<byte> daemonProof)
    {
        if (body.Length != Size)
        {
            DaemonProtocolException.Throw($"HELLO reply of {body.Length} bytes, version 2 has {Size}");
        }

        body.Slice(NonceOffset, DaemonAuthProof.NonceSize).CopyTo(daemonNonce);
        body.Slice(ProofOffset, DaemonAuthProof.Size).CopyTo(daemonProof);
        return new DaemonWelcome(BinaryPrimitives.ReadUInt16BigEndian(body), BinaryPrimitives.ReadUInt32BigEndian(body[4..]), BinaryPrimitives.ReadUInt64BigEndian(body[8..]));
    }
}
