using System.Buffers;

namespace Swap.Common.Buffers;

/// <summary>
/// A <see cref="MemoryPool{T}"/> of equal pinned blocks that are touched when made and kept for good, for the pipes
/// of the request path (the way Kestrel pools its socket buffers). The shared array pool that pipes use by default
/// drops its arrays when the GC sees memory pressure, and the next receive then lands in a new array whose pages
/// the kernel has to find first: a page fault that, on a host swapping to this server, waits in reclaim for the
/// very swap-out the receive is taking in (seen in the whole-machine test: an nbd-connection thread in recvmsg →
/// page fault → reclaim). Blocks here are made once (see <see cref="Preallocate"/>) and reused.
/// </summary>
public sealed class PinnedBlockMemoryPool(int blockSize) : MemoryPool<byte>
{
    private const int PageSize = 4096;
    private readonly Stack<Block> _free = new();
    private readonly Lock _lock = new();
    private int _made;

    public override int MaxBufferSize => blockSize;

    /// <summary>Blocks made so far (free or rented): what the pool holds in all, <see cref="MaxBufferSize"/> bytes each.</summary>
    public int BlocksMade => Volatile.Read(ref _made);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, blockSize);
        lock (_lock)
        {
            if (_free.TryPop(out var block))
            {
                return block;
            }
        }

        return new Block(this, blockSize);
    }

    /// <summary>Makes <paramref name="count"/> blocks now (allocated and touched), ready for the first requests.</summary>
    public void Preallocate(int count)
    {
        var blocks = new Block[count];
        for (var i = 0; i < count; i++)
        {
            blocks[i] = new Block(this, blockSize);
        }

        lock (_lock)
        {
            foreach (var block in blocks)
            {
                _free.Push(block);
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        // The blocks are plain pinned arrays: the GC frees them with the pool.
    }

    private void Return(Block block)
    {
        lock (_lock)
        {
            _free.Push(block);
        }
    }

    private sealed class Block : IMemoryOwner<byte>
    {
        private readonly PinnedBlockMemoryPool _pool;
        private readonly byte[] _array;

        public Block(PinnedBlockMemoryPool pool, int size)
        {
            _pool = pool;
            _array = GC.AllocateUninitializedArray<byte>(size, pinned: true);
            for (var page = 0; page < size; page += PageSize)
            {
                _array[page] = 0;
            }

            Interlocked.Increment(ref pool._made);
        }

        public Memory<byte> Memory => _array;

        public void Dispose() => _pool.Return(this);
    }
}
