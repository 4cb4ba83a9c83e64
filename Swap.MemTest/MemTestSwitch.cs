using Swap.Common.Configuration;

namespace Swap.MemTest;

/// <summary>One swapnbd-memtest option, declared once: switch, README default, --help line and how its value is applied.</summary>
/// <param name="Apply">Sets the value on the options; returns the error (naming the switch) when the value is bad.</param>
public sealed record MemTestSwitch(string Switch, string? Value, string Default, string Help, Func<MemTestOptions, string, string?> Apply)
    : OptionSpec(Switch, Value, Default, Help);
