using System.Text;

namespace Swap.Common.Configuration;

/// <summary>Writes a program's --help text: its introduction, one aligned line per declared option, its closing note.</summary>
public static class OptionUsage
{
    /// <param name="column">Where the help text starts on each option line (the switches are padded to it).</param>
    public static string Format(string introduction, IEnumerable<OptionSpec> specs, int column, string closing)
    {
        var text = new StringBuilder(introduction).Append("\n\n");
        foreach (var spec in specs)
        {
            if (spec.Help is null)
            {
                continue;
            }

            var lead = "  " + spec.Synopsis;
            if (lead.Length + 2 > column)
            {
                throw new ArgumentOutOfRangeException(nameof(column), $"'{spec.Synopsis}' does not fit before column {column}");
            }

            var continuation = "\n" + new string(' ', column);
            text.Append(lead.PadRight(column)).Append(spec.Help.Replace("\n", continuation, StringComparison.Ordinal)).Append('\n');
        }

        return text.Append('\n').Append(closing).ToString();
    }
}
