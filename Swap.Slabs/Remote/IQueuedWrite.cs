namespace Swap.Slabs.Remote;

/// <summary>
/// The owner of one WRITE in a link's <see cref="WriteBehind"/> queue, told what became of it. Exactly one of
/// <see cref="Sent"/> and <see cref="Dropped"/> is called, on the link's send thread; <see cref="InFifo"/> comes before
/// <see cref="Sent"/> unless the send failed first.
/// </summary>
public interface IQueuedWrite
{
    /// <summary>Whether the write should still go (false: its slab moved on, the pages stay on the disk only).</summary>
    bool Wanted { get; }

    /// <summary>The frame has its place in the link's order: every frame sent from now on is behind it.</summary>
    void InFifo();

    /// <summary>The frame left (or failed to); the reply comes in <paramref name="reply"/>, consumed exactly once.</summary>
    void Sent(ValueTask<DaemonReply> reply);

    /// <summary>The write never left: the link died or it was no longer wanted.</summary>
    void Dropped();
}
