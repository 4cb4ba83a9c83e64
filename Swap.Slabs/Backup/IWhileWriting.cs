namespace Swap.Slabs.Backup;

/// <summary>
/// Work a writer does while its backup disk write is in flight (<see cref="IBackupStore.WriteWhile"/>): it must not
/// publish anything the write's completion should come first for; what it prepares is published after.
/// </summary>
public interface IWhileWriting
{
    void Run();
}
