using System.Security.Cryptography;

namespace Swap.Common.Security;

/// <summary>
/// The cluster key: 32 random bytes shared by every server and donor of one cluster, proven (never sent) in the
/// daemon handshake. Held in a pinned array (the processes mlockall, so it never reaches swap) and never printed.
/// </summary>
public sealed class ClusterKey
{
    /// <summary>Bytes of the key.</summary>
    public const int Size = 32;

    private readonly byte[] _bytes = GC.AllocateArray<byte>(Size, pinned: true);

    private ClusterKey(ReadOnlySpan<byte> bytes) => bytes.CopyTo(_bytes);

    /// <summary>The key itself, for the HMAC; never log or copy it. A method, so serializers and debuggers pass it by.</summary>
    public ReadOnlySpan<byte> AsSpan() => _bytes;

    /// <summary>A key from its bytes (exactly <see cref="Size"/>).</summary>
    public static ClusterKey FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"a cluster key has {Size} bytes, not {bytes.Length}", nameof(bytes));
        }

        return new ClusterKey(bytes);
    }

    /// <summary>A new key from the operating system's random number generator.</summary>
    public static ClusterKey Generate()
    {
        Span<byte> bytes = stackalloc byte[Size];
        RandomNumberGenerator.Fill(bytes);
        var key = new ClusterKey(bytes);
        CryptographicOperations.ZeroMemory(bytes);
        return key;
    }

    /// <summary>Overwrites the key with zeros (a key loaded only to check its file).</summary>
    internal void Erase() => CryptographicOperations.ZeroMemory(_bytes);

    /// <summary>Never the key: logs and exception messages that format one show this.</summary>
    public override string ToString() => "ClusterKey(32 bytes, not shown)";
}
