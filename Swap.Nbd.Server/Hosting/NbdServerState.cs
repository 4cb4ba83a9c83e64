namespace Swap.Nbd.Server.Hosting;

/// <summary>Server-wide state every connection consults: whether a shutdown has begun.</summary>
internal sealed class NbdServerState
{
    private volatile bool _stopping;

    public bool IsStopping => _stopping;

    public void BeginStopping() => _stopping = true;
}
