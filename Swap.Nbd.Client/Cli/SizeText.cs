using System.Globalization;

namespace Swap.Nbd.Client.Cli;

/// <summary>Byte sizes as people type them (4k, 64MiB, 1G) and as they like to read them (1.5 GiB).</summary>
internal static class SizeText
{
    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim();
        var end = 0;
        while (end < s.Length && char.IsAsciiDigit(s[end]))
        {
            end++;
        }

        if (end == 0 || !long.TryParse(s.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }

        var shift = s[end..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 0,
            "K" or "KB" or "KIB" => 10,
            "M" or "MB" or "MIB" => 20,
            "G" or "GB" or "GIB" => 30,
            "T" or "TB" or "TIB" => 40,
            _ => -1,
        };
        if (shift < 0 || number > (long.MaxValue >> shift))
        {
            return false;
        }

        bytes = number << shift;
        return true;
    }

    public static string Human(long bytes)
    {
        string[] units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.##} {units[unit]}");
    }
}
