using System.Globalization;

namespace Swap.Common.Units;

/// <summary>
/// Parses and formats byte sizes the way operators write them (4096, 512K, 64MiB, 1G, 12GiB) and, for reports, the way
/// people like to read them (1.5 GiB).
/// </summary>
public static class ByteSize
{
    private static readonly string[] ApproximateUnits = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

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

    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        var unit = 0;
        while (unit < units.Length - 1 && bytes != 0 && bytes % 1024 == 0)
        {
            bytes /= 1024;
            unit++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{bytes}{units[unit]}");
    }

    /// <summary>
    /// For reading, not for parsing back: the largest binary unit that keeps the number at 1 or more, rounded to two
    /// decimals ("512 bytes", "64 MiB", "1.5 GiB").
    /// </summary>
    public static string FormatApproximate(long bytes)
    {
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < ApproximateUnits.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.##} {ApproximateUnits[unit]}");
    }
}
