namespace Swap.Common.Configuration;

/// <summary>What one argument (or switch and value) of a command line turned out to be.</summary>
public enum CommandLineTokenKind
{
    /// <summary>A known switch with its value ("true" for a flag without one).</summary>
    Option,

    /// <summary>A switch nobody declared; <see cref="CommandLineToken.Value"/> is the argument after it, skipped as its value, if any.</summary>
    Unknown,

    /// <summary>An argument that is not a switch and follows none.</summary>
    Stray,

    /// <summary>A known switch that takes a value, at the end of the command line.</summary>
    MissingValue,
}
