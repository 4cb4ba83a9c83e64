namespace Swap.Common.Security;

/// <summary>A key file cannot be used (or created); the message names the path, what is wrong and the fix.</summary>
public sealed class ClusterKeyException : Exception
{
    public ClusterKeyException() { }
    public ClusterKeyException(string message) : base(message) { }
    public ClusterKeyException(string message, Exception inner) : base(message, inner) { }
}
