using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Swap.Daemon.Protocol;

/// <summary>
/// The proofs of the version 2 handshake: HMAC-SHA256 under the cluster key over a transcript that starts with a
/// label naming the side (so neither proof can be reflected as the other) and holds both fresh nonces, both ids and
/// the HELLO flags (so a recorded handshake is worthless against a new nonce and an on-path change of the flags is
/// caught). Big-endian fields, fixed widths:
/// <list type="bullet">
/// <item>daemon proof = HMAC(K, "SWPD-v2-daemon" || client nonce || daemon nonce || client id u64 || daemon id u64 || max slabs u32 || flags u16)</item>
/// <item>server proof = HMAC(K, "SWPD-v2-server" || daemon nonce || client nonce || client id u64 || daemon id u64 || flags u16)</item>
/// </list>
/// Pure: no I/O, nothing allocated.
/// </summary>
public static class DaemonAuthProof
{
    /// <summary>Bytes of a proof (HMAC-SHA256).</summary>
    public const int Size = 32;

    /// <summary>Bytes of each side's nonce.</summary>
    public const int NonceSize = 32;

    /// <summary>Bytes of the cluster key.</summary>
    public const int KeySize = 32;

    /// <summary>The AUTH request body: the server's proof.</summary>
    public const int AuthBodySize = Size;

    private const int DaemonTranscriptSize = 14 + NonceSize + NonceSize + 8 + 8 + 4 + 2;
    private const int ServerTranscriptSize = 14 + NonceSize + NonceSize + 8 + 8 + 2;

    private static ReadOnlySpan<byte> DaemonLabel => "SWPD-v2-daemon"u8;

    private static ReadOnlySpan<byte> ServerLabel => "SWPD-v2-server"u8;

    /// <summary>The proof a daemon sends in its welcome.</summary>
    public static void DaemonProof(ReadOnlySpan<byte> key, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> daemonNonce,
        DaemonHello hello, DaemonWelcome welcome, Span<byte> proof)
    {
        Span<byte> transcript = stackalloc byte[DaemonTranscriptSize];
        Prove(key, transcript, DaemonLabel, clientNonce, daemonNonce, hello, welcome, withMaxSlabs: true, proof);
    }

    /// <summary>The proof a server sends in AUTH.</summary>
    public static void ServerProof(ReadOnlySpan<byte> key, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> daemonNonce,
        DaemonHello hello, DaemonWelcome welcome, Span<byte> proof)
    {
        Span<byte> transcript = stackalloc byte[ServerTranscriptSize];
        Prove(key, transcript, ServerLabel, daemonNonce, clientNonce, hello, welcome, withMaxSlabs: false, proof);
    }

    /// <summary>True if <paramref name="received"/> is the daemon's proof; compared in fixed time.</summary>
    public static bool IsDaemonProof(ReadOnlySpan<byte> key, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> daemonNonce,
        DaemonHello hello, DaemonWelcome welcome, ReadOnlySpan<byte> received)
    {
        Span<byte> expected = stackalloc byte[Size];
        DaemonProof(key, clientNonce, daemonNonce, hello, welcome, expected);
        return received.Length == Size && CryptographicOperations.FixedTimeEquals(expected, received);
    }

    /// <summary>True if <paramref name="received"/> is the server's proof; compared in fixed time.</summary>
    public static bool IsServerProof(ReadOnlySpan<byte> key, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> daemonNonce,
        DaemonHello hello, DaemonWelcome welcome, ReadOnlySpan<byte> received)
    {
        Span<byte> expected = stackalloc byte[Size];
        ServerProof(key, clientNonce, daemonNonce, hello, welcome, expected);
        return received.Length == Size && CryptographicOperations.FixedTimeEquals(expected, received);
    }

    /// <summary>
    /// One side's proof: label, that side's peer nonce first, then the ids, the daemon's max slabs (daemon proof
    /// only) and the flags, into <paramref name="transcript"/> (exactly that long), then HMAC-SHA256 under the key.
    /// </summary>
    private static void Prove(ReadOnlySpan<byte> key, Span<byte> transcript, ReadOnlySpan<byte> label,
        ReadOnlySpan<byte> firstNonce, ReadOnlySpan<byte> secondNonce, DaemonHello hello, DaemonWelcome welcome,
        bool withMaxSlabs, Span<byte> proof)
    {
        label.CopyTo(transcript);
        var rest = transcript[label.Length..];
        firstNonce[..NonceSize].CopyTo(rest);
        secondNonce[..NonceSize].CopyTo(rest[NonceSize..]);
        rest = rest[(2 * NonceSize)..];
        BinaryPrimitives.WriteUInt64BigEndian(rest, hello.ClientId);
        BinaryPrimitives.WriteUInt64BigEndian(rest[8..], welcome.DaemonId);
        rest = rest[16..];
        if (withMaxSlabs)
        {
            BinaryPrimitives.WriteUInt32BigEndian(rest, welcome.MaxSlabs);
            rest = rest[4..];
        }

        BinaryPrimitives.WriteUInt16BigEndian(rest, (ushort)hello.Flags);
        HMACSHA256.HashData(CheckKey(key), transcript, proof[..Size]);
    }

    private static ReadOnlySpan<byte> CheckKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"the cluster key has {KeySize} bytes, not {key.Length}", nameof(key));
        }

        return key;
    }
}
