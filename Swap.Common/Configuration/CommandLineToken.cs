namespace Swap.Common.Configuration;

/// <summary>One switch (with its value) or one problem found by <see cref="CommandLineScanner"/>.</summary>
/// <param name="Argument">The argument as given ("--size=1G", "stray").</param>
/// <param name="Switch">The switch without "=value" ("--size"); the argument itself for a stray one.</param>
public readonly record struct CommandLineToken(CommandLineTokenKind Kind, string Argument, string Switch, string? Value);
