namespace Swap.Common.Security;

/// <summary>
/// The key file's text: the key as 64 lowercase hex digits and a newline (65 bytes). Reading also takes upper case
/// and a missing newline. Pure: spans in, spans out, nothing allocated.
/// </summary>
public static class ClusterKeyText
{
    /// <summary>Bytes of a key file as keygen writes it.</summary>
    public const int Size = 2 * ClusterKey.Size + 1;

    private static ReadOnlySpan<byte> Digits => "0123456789abcdef"u8;

    /// <summary>Writes <paramref name="key"/> as the file's <see cref="Size"/> bytes.</summary>
    public static void Format(ReadOnlySpan<byte> key, Span<byte> text)
    {
        for (var i = 0; i < ClusterKey.Size; i++)
        {
            text[2 * i] = Digits[key[i] >> 4];
            text[(2 * i) + 1] = Digits[key[i] & 0xF];
        }

        text[Size - 1] = (byte)'\n';
    }

    /// <summary>
    /// Reads the file's bytes into <paramref name="key"/>; false unless they are 64 hex digits, optionally followed
    /// by one newline.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> text, Span<byte> key)
    {
        if (text.Length == Size && text[^1] == (byte)'\n')
        {
            text = text[..^1];
        }

        if (text.Length != 2 * ClusterKey.Size)
        {
            return false;
        }

        for (var i = 0; i < ClusterKey.Size; i++)
        {
            var high = Nibble(text[2 * i]);
            var low = Nibble(text[(2 * i) + 1]);
            if ((high | low) < 0)
            {
                return false;
            }

            key[i] = (byte)((high << 4) | low);
        }

        return true;
    }

    private static int Nibble(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
