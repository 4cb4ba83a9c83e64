namespace Swap.Nbd.Client;

/// <summary>How an NBD client connection negotiates and behaves; defaults suit most uses.</summary>
public sealed class NbdClientOptions
{
    /// <summary>Ask for structured replies (needed for BLOCK_STATUS, sparse reads and error messages).</summary>
    public bool StructuredReplies { get; set; } = true;

    /// <summary>Select the base:allocation meta context so BLOCK_STATUS works (only with structured replies).</summary>
    public bool BaseAllocation { get; set; } = true;

    /// <summary>Connect plus handshake must finish within this time.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a graceful disconnect waits for outstanding replies before the socket is closed.</summary>
    public TimeSpan DisconnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Run request continuations on the receive loop instead of the thread pool. Faster for tight loops such as
    /// a benchmark, but a continuation that blocks then stalls every reply on the connection.
    /// </summary>
    public bool InlineCompletions { get; set; }

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
