using System.Buffers.Binary;

namespace Swap.Daemon.Protocol;

/// <summary>
/// HELLO request body, version 2: u32 magic "SWPD", u16 version, u16 flags, u64 client id, the server's nonce [32]
/// (48 bytes). The nonce lives in the caller's span, not in this struct, so nothing is allocated.
/// </summary>
public readonly record struct DaemonHello(ushort Version, ulong ClientId, DaemonHelloFlags Flags = DaemonHelloFlags.None)
{
    public const int Size = 48;

    /// <summary>Magic and version: what a HELLO of any version starts with, enough to answer VERSION.</summary>
    public const int PrefixSize = 8;

    private const int NonceOffset = 16;

    /// <summary>Writes the body with <paramref name="clientNonce"/> (<see cref="DaemonAuthProof.NonceSize"/> bytes).</summary>
    public void Write(Span<byte> destination, ReadOnlySpan<byte> clientNonce)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, DaemonFrameHeader.HelloMagic);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], Version);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Flags);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], ClientId);
        clientNonce[..DaemonAuthProof.NonceSize].CopyTo(destination[NonceOffset..]);
    }

    /// <summary>
    /// The version a HELLO body says it speaks; throws <see cref="DaemonProtocolException"/> when it is too short
    /// for the prefix or lacks the magic (not a SwapNbd server: close).
    /// </summary>
    public static ushort ReadVersion(ReadOnlySpan<byte> body)
    {
        if (body.Length < PrefixSize)
        {
            DaemonProtocolException.Throw($"HELLO body of {body.Length} bytes, need at least {PrefixSize}");
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(body) != DaemonFrameHeader.HelloMagic)
        {
            DaemonProtocolException.Throw("HELLO without the SWPD magic: not a SwapNbd server");
        }

        return BinaryPrimitives.ReadUInt16BigEndian(body[4..]);
    }

    /// <summary>Reads a version 2 body (exactly <see cref="Size"/> bytes) and copies its nonce into <paramref name="clientNonce"/>.</summary>
    public static DaemonHello Read(ReadOnlySpan<byte> body, Span<byte> clientNonce)
    {
        ReadVersion(body);
        if (body.Length != Size)
        {
            DaemonProtocolException.Throw($"HELLO body of {body.Length} bytes, version 2 has {Size}");
        }

        body.Slice(NonceOffset, DaemonAuthProof.NonceSize).CopyTo(clientNonce);
        return new DaemonHello(BinaryPrimitives.ReadUInt16BigEndian(body[4..]), BinaryPrimitives.ReadUInt64BigEndian(body[8..]),
            (DaemonHelloFlags)BinaryPrimitives.ReadUInt16BigEndian(body[6..]));
    }
}
