namespace Swap.Nbd.Client.Cli;

/// <summary>The command line is wrong; reported as one line with exit code 2.</summary>
public sealed class CliUsageException : Exception
{
    public CliUsageException() { }
    public CliUsageException(string message) : base(message) { }
    public CliUsageException(string message, Exception inner) : base(message, inner) { }
}
