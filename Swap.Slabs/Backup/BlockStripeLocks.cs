namespace Swap.Slabs.Backup;

/// <summary>
/// Locks for read-modify-write of disk blocks, striped by block number: two writes of different bytes of one block
/// must not both read the old block and write it back, each losing the other's bytes.
/// </summary>
internal sealed class BlockStripeLocks
{
    private const int Stripes = 64;
    private readonly Lock[] _locks = new Lock[Stripes];

    public BlockStripeLocks()
    {
        for (var i = 0; i < Stripes; i++)
        {
            _locks[i] = new Lock();
        }
    }

    /// <summary>Takes the locks of two blocks (the same one twice is taken once), always the lower stripe first so two callers cannot deadlock.</summary>
    public void Enter(long blockA, long blockB, out int first, out int second)
    {
        var a = (int)(blockA & (Stripes - 1));
        var b = (int)(blockB & (Stripes - 1));
        first = Math.Min(a, b);
        second = a == b ? -1 : Math.Max(a, b);
        _locks[first].Enter();
        if (second >= 0)
        {
            _locks[second].Enter();
        }
    }

    public void Exit(int first, int second)
    {
        if (second >= 0)
        {
            _locks[second].Exit();
        }

        _locks[first].Exit();
    }
}
