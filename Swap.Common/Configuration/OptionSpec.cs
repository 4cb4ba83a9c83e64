namespace Swap.Common.Configuration;

/// <summary>
/// One command-line option as users see it, declared once: the --help line and the README table row are made from
/// (or checked against) this.
/// </summary>
/// <param name="Switch">"--slab-size".</param>
/// <param name="Value">What follows the switch in --help and the README ("SIZE"); null for a flag that takes none.</param>
/// <param name="Default">The README table's default cell, exactly ("`1GiB`", "none").</param>
/// <param name="Help">The --help line after the switch (a '\n' continues it on the next line); null when the usage
/// line names the option instead (--config).</param>
public record OptionSpec(string Switch, string? Value, string Default, string? Help)
{
    /// <summary>"--slab-size SIZE", as --help and the README write it.</summary>
    public string Synopsis => Value is null ? Switch : $"{Switch} {Value}";
}
