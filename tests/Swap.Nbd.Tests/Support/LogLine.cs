using System.Globalization;
using System.Text.RegularExpressions;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// One entry of an out/ executable's log (SimpleConsole, one line an entry: <c>HH:mm:ss.fff info: Category[EventId]
/// message</c>), parsed, so a test can ask when the server did something and not only whether.
/// </summary>
internal sealed partial record LogLine(TimeSpan TimeOfDay, int EventId, string Message)
{
    /// <summary>The entries among <paramref name="lines"/> (other lines skipped).</summary>
    public static List<LogLine> ParseAll(IEnumerable<string> lines)
    {
        var entries = new List<LogLine>();
        foreach (var line in lines)
        {
            var match = Entry().Match(line);
            if (match.Success)
            {
                entries.Add(new LogLine(TimeSpan.ParseExact(match.Groups[1].Value, @"hh\:mm\:ss\.fff", CultureInfo.InvariantCulture),
                    int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture), match.Groups[3].Value));
            }
        }

        return entries;
    }

    /// <summary>How long after <paramref name="moment"/> (local time, as the log's timestamps) this entry was logged; negative before it.</summary>
    public TimeSpan After(DateTime moment)
    {
        var difference = TimeOfDay - moment.TimeOfDay;
        // A run that crosses midnight: the log's clock starts again at 00:00.
        return difference < TimeSpan.FromHours(-12) ? difference + TimeSpan.FromDays(1) : difference > TimeSpan.FromHours(12) ? difference - TimeSpan.FromDays(1) : difference;
    }

    [GeneratedRegex(@"^(\d\d:\d\d:\d\d\.\d\d\d) \w+: [^\[]*\[(\d+)\] (.*)$")]
    private static partial Regex Entry();
}
