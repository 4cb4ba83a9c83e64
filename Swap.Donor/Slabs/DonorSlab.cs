using Swap.BlockDevices;

namespace Swap.Donor.Slabs;

/// <summary>
/// One lent slab: its memory, who owns it, and a reference count that keeps the memory mapped while any request
/// copies into or out of it, so eviction never unmaps under a reader.
/// </summary>
internal sealed class DonorSlab
{
    private int _refs = 1; // the slab table's reference
    private int _revoked;
    private long _lastAccess;

    public DonorSlab(uint id, uint epoch, DonorClient owner, long size, long now)
    {
        Id = id;
        Epoch = epoch;
        Owner = owner;
        Size = size;
        Device = new SparseMemoryDevice(size);
        _lastAccess = now;
    }

    public uint Id { get; }

    public uint Epoch { get; }

    public DonorClient Owner { get; }

    public long Size { get; }

    public SparseMemoryDevice Device { get; }

    /// <summary>Position in the slab table's list of mapped slabs (for O(1) removal and random sampling).</summary>
    public int MappedIndex { get; set; } = -1;

    /// <summary>TimeProvider timestamp of the last READ/WRITE/TRIM.</summary>
    public long LastAccess
    {
        get => Volatile.Read(ref _lastAccess);
        set => Volatile.Write(ref _lastAccess, value);
    }

    /// <summary>Freed or evicted: requests that still hold a reference finish, later ones get STALE.</summary>
    public bool Revoked => Volatile.Read(ref _revoked) != 0;

    /// <summary>Takes a reference for one request; false once the slab is gone.</summary>
    public bool TryAcquire()
    {
        var refs = Volatile.Read(ref _refs);
        while (refs > 0)
        {
            var seen = Interlocked.CompareExchange(ref _refs, refs + 1, refs);
            if (seen == refs)
            {
                return true;
            }

            refs = seen;
        }

        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            Device.Dispose();
        }
    }

    /// <summary>Drops the table's reference: the memory goes back to the kernel when the last request using it ends.</summary>
    public bool Revoke()
    {
        if (Interlocked.Exchange(ref _revoked, 1) != 0)
        {
            return false;
        }

        Release();
        return true;
    }
}
