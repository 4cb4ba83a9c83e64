namespace Swap.Server.Portal;

/// <summary>A reading of the portal that must not replace the last good list: why, naming the source and the fix.</summary>
public sealed class PortalResolveException(string message, Exception? inner = null) : Exception(message, inner);
