namespace Swap.Nbd.Client;

/// <summary>How an <see cref="NbdUri"/> reaches its server.</summary>
public enum NbdTransport
{
    Tcp,
    Unix,
}
