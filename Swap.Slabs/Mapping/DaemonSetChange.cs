namespace Swap.Slabs.Mapping;

/// <summary>
/// What <see cref="SwapDevice.SetDaemons"/> changed: the daemons that joined (or came back while draining), the ones
/// being drained, and a task that completes when every one of those drains has closed its link.
/// </summary>
public sealed record DaemonSetChange(IReadOnlyList<string> Added, IReadOnlyList<string> Removed, Task Drained)
{
    public bool IsEmpty => Added.Count == 0 && Removed.Count == 0;
}
