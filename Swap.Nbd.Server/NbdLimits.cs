namespace Swap.Nbd.Server;

/// <summary>Protocol limits of the server that both the handshake (which advertises them) and transmission (which enforces them) use.</summary>
internal static class NbdLimits
{
    /// <summary>The largest READ or WRITE payload accepted, advertised as the maximum block size.</summary>
    public const int MaxPayload = 32 * 1024 * 1024;
}
