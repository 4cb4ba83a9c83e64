using System.Diagnostics;

namespace Swap.Donor.Slabs;

/// <summary>
/// The slabs lent, by id: the data path finds a slab without a lock (a volatile read of the slot array, then the
/// slab's reference count); adding and removing happen under the daemon's lock, which the caller holds. A reused id
/// always comes with an epoch never seen before.
/// </summary>
internal sealed class DonorSlabTable(Lock gate)
{
    private readonly List<DonorSlab> _mapped = [];
    private readonly Stack<uint> _freeIds = new();
    private DonorSlab?[] _slots = new DonorSlab?[64];
    private uint _nextSlabId = 1; // 0 is never a slab id
    private uint _epoch;
    private long _lent;

    /// <summary>Slabs lent; the caller holds the lock.</summary>
    public int CountLocked
    {
        get
        {
            Debug.Assert(gate.IsHeldByCurrentThread);
            return _mapped.Count;
        }
    }

    /// <summary>Bytes lent, every slab at its full size; the caller holds the lock.</summary>
    public long LentLocked
    {
        get
        {
            Debug.Assert(gate.IsHeldByCurrentThread);
            return _lent;
        }
    }

    /// <summary>The slab with this id, or null; lock-free, for the data path (which then takes a reference and checks the epoch).</summary>
    public DonorSlab? Find(uint id)
    {
        var slots = Volatile.Read(ref _slots);
        return id < (uint)slots.Length ? Volatile.Read(ref slots[id]) : null;
    }

    /// <summary>Lends a new slab of <paramref name="size"/> bytes to <paramref name="owner"/>; the caller holds the lock and has checked the limits.</summary>
    public DonorSlab AddLocked(DonorClient owner, long size, long now)
    {
        Debug.Assert(gate.IsHeldByCurrentThread);
        var id = _freeIds.Count > 0 ? _freeIds.Pop() : _nextSlabId++;
        // A reused id always comes with an epoch never seen before, so a request for the slab that held it is STALE.
        var epoch = ++_epoch == 0 ? ++_epoch : _epoch;
        var slab = new DonorSlab(id, epoch, owner, size, now);
        var slots = _slots;
        if (id >= slots.Length)
        {
            var grown = new DonorSlab?[Math.Max(slots.Length * 2, (int)id + 1)];
            slots.CopyTo(grown, 0);
            Volatile.Write(ref _slots, grown);
            slots = grown;
        }

        Volatile.Write(ref slots[id], slab);
        slab.MappedIndex = _mapped.Count;
        _mapped.Add(slab);
        owner.Slabs.Add(slab);
        _lent += size;
        return slab;
    }

    /// <summary>
    /// Takes the slab out of the table and returns the bytes it had committed; its memory goes back when the last
    /// request using it ends. The caller holds the lock.
    /// </summary>
    public long RemoveLocked(DonorSlab slab)
    {
        Debug.Assert(gate.IsHeldByCurrentThread);
        var committed = slab.Device.AllocatedBytes;
        Volatile.Write(ref _slots[slab.Id], null);
        var last = _mapped[^1];
        _mapped[slab.MappedIndex] = last;
        last.MappedIndex = slab.MappedIndex;
        _mapped.RemoveAt(_mapped.Count - 1);
        slab.MappedIndex = -1;
        slab.Owner.Slabs.Remove(slab);
        _lent -= slab.Size;
        _freeIds.Push(slab.Id);
        slab.Revoke();
        return committed;
    }

    /// <summary>Removes every slab; the caller holds the lock.</summary>
    public void RemoveAllLocked()
    {
        while (_mapped.Count > 0)
        {
            RemoveLocked(_mapped[^1]);
        }
    }

    /// <summary>Bytes of slab memory actually committed (pages written and not trimmed); the caller holds the lock.</summary>
    public long CommittedLocked()
    {
        Debug.Assert(gate.IsHeldByCurrentThread);
        long committed = 0;
        foreach (var slab in _mapped)
        {
            committed += slab.Device.AllocatedBytes;
        }

        return committed;
    }

    /// <summary>Fills <paramref name="sample"/> with <paramref name="want"/> distinct slabs chosen at random (all of them if there are no more); the caller holds the lock.</summary>
    public void SampleLocked(List<DonorSlab> sample, int want)
    {
        Debug.Assert(gate.IsHeldByCurrentThread);
        sample.Clear();
        if (_mapped.Count <= want)
        {
            sample.AddRange(_mapped);
            return;
        }

        // Partial Fisher-Yates over the mapped list itself: order there carries no meaning, only MappedIndex must follow.
        for (var i = 0; i < want; i++)
        {
            var j = Random.Shared.Next(i, _mapped.Count);
            (_mapped[i], _mapped[j]) = (_mapped[j], _mapped[i]);
            _mapped[i].MappedIndex = i;
            _mapped[j].MappedIndex = j;
            sample.Add(_mapped[i]);
        }
    }
}
