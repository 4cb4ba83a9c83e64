namespace Swap.Slabs.Placement;

/// <summary>portal.list cannot be read or is malformed; the message names the file and, where there is one, the line.</summary>
public sealed class PortalListException : Exception
{
    public PortalListException() { }
    public PortalListException(string message) : base(message) { }
    public PortalListException(string message, Exception inner) : base(message, inner) { }

    public PortalListException(string message, int line, Exception? inner = null) : base(message, inner) => Line = line;

    /// <summary>The 1-based line the error is about; 0 when it concerns the whole file.</summary>
    public int Line { get; }
}
