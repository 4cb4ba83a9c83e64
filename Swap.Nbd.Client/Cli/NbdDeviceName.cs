using System.Globalization;

namespace Swap.Nbd.Client.Cli;

/// <summary>A device argument: <c>/dev/nbdN</c>, <c>nbdN</c> or <c>N</c>, as a device index.</summary>
internal static class NbdDeviceName
{
    public static uint Parse(string command, string text)
    {
        var digits = text.StartsWith("/dev/nbd", StringComparison.Ordinal) ? text[8..]
            : text.StartsWith("nbd", StringComparison.Ordinal) ? text[3..]
            : text;
        return uint.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index <= int.MaxValue
            ? index
            : throw new CliUsageException($"{command}: '{text}' is not an nbd device (expected /dev/nbdN)");
    }

    public static string Format(uint index) => string.Create(CultureInfo.InvariantCulture, $"/dev/nbd{index}");
}
