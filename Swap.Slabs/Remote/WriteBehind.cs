using Swap.Daemon.Protocol;

namespace Swap.Slabs.Remote;

/// <summary>
/// The link's write-behind queue: an acknowledged write's pages are copied (or sealed) into a fixed ring of
/// <see cref="DaemonLinkSettings.WriteBehindBytes"/> bytes, allocated and touched when the link comes up, and the
/// link's own send thread sends them in order. The NBD path only copies: it never waits on the socket, whose
/// send may need socket-buffer memory that, on a host swapping to this server, only reclaim can give, and reclaim
/// waits on the very swap-out being answered. A full ring is no error: the write stays on the disk only.
/// Producers (NBD threads) reserve under a lock, fill outside it and commit; the send thread takes committed entries
/// in reservation order, deferring each while more follow so they leave as one send.
/// </summary>
public sealed class WriteBehind : IDisposable
{
    /// <summary>Entries the ring holds at most (a 4 KiB write each at 4 MiB).</summary>
    public const int MaxEntries = 1024;

    private const int Reserved = 0;
    private const int Committed = 1;
    private const int Cancelled = 2;

    private readonly DaemonLink _link;
    private readonly byte[] _data;
    private readonly Entry[] _entries = new Entry[MaxEntries];
    private readonly Lock _lock = new();
    private readonly ManualResetEventSlim _work = new(false, spinCount: 0);
    private readonly Thread _thread;
    private long _head;
    private long _tail;
    private int _dataTail;
    private int _usedBytes;
    private int _sleeping;
    private bool _closed;

    internal WriteBehind(DaemonLink link, int bytes)
    {
        _link = link;
        _data = GC.AllocateArray<byte>(bytes, pinned: true);
        // Touched now, while there is memory: under mlockall(MCL_ONFAULT) a first touch later is an allocation.
        _data.AsSpan().Fill(0xA5);
        _thread = new Thread(Run) { IsBackground = true, Name = "daemon-write-behind" };
    }

    /// <summary>Largest payload one entry takes: a quarter of the ring, so one large write cannot hold it all.</summary>
    public int MaxPayload => _data.Length / 4;

    internal void Start() => _thread.Start();

    /// <summary>
    /// Reserves room for a payload of <paramref name="length"/> bytes; false when the ring is full, the payload too
    /// large or the link gone. On true, fill <paramref name="payload"/> and call <see cref="Commit"/> or
    /// <see cref="Cancel"/> with <paramref name="ticket"/>, promptly: later entries wait for it.
    /// </summary>
    public bool TryReserve(int length, out long ticket, out Span<byte> payload)
    {
        ticket = -1;
        payload = default;
        if (length > MaxPayload || length <= 0)
        {
            return false;
        }

        int start;
        lock (_lock)
        {
            start = _dataTail;
            var waste = 0;
            if (start + length > _data.Length)
            {
                waste = _data.Length - start;
                start = 0;
            }

            if (_closed || _tail - _head == MaxEntries || _usedBytes + waste + length > _data.Length)
            {
                return false;
            }

            _usedBytes += waste + length;
            _dataTail = start + length == _data.Length ? 0 : start + length;
            ticket = _tail++;
            ref var entry = ref _entries[ticket % MaxEntries];
            entry = new Entry { Start = start, Length = length, Footprint = waste + length, State = Reserved };
        }

        payload = _data.AsSpan(start, length);
        return true;
    }

    /// <summary>Queues the filled entry as a WRITE of its payload at <paramref name="offset"/> of the slab.</summary>
    public void Commit(long ticket, SlabGrant grant, long offset, IQueuedWrite owner)
    {
        bool dropped;
        lock (_lock)
        {
            ref var entry = ref _entries[ticket % MaxEntries];
            entry.Grant = grant;
            entry.Offset = offset;
            entry.Owner = owner;
            Volatile.Write(ref entry.State, Committed);
            dropped = _closed;
        }

        if (dropped)
        {
            // The send thread has left: nothing will send it.
            owner.Dropped();
            return;
        }

        Wake();
    }

    /// <summary>Gives a reserved entry up (it could not be filled): the send thread skips it.</summary>
    public void Cancel(long ticket)
    {
        lock (_lock)
        {
            Volatile.Write(ref _entries[ticket % MaxEntries].State, Cancelled);
        }

        Wake();
    }

    /// <summary>Wakes the send thread: there is work, or the link died.</summary>
    internal void Wake()
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _sleeping) != 0)
        {
            _work.Set();
        }
    }

    public void Dispose()
    {
        Wake();
        _work.Set();
        if (_thread.IsAlive && Thread.CurrentThread != _thread)
        {
            _thread.Join(TimeSpan.FromSeconds(2));
        }
    }

    private void Run()
    {
        Swap.Common.Hosting.StackPrefault.Touch();
        while (_link.IsAlive)
        {
            if (!TryTakeHead(out var entry, out var more))
            {
                Sleep();
                continue;
            }

            if (entry.State == Committed)
            {
                var owner = entry.Owner!;
                if (owner.Wanted)
                {
                    owner.Sent(_link.SendQueuedWrite(entry.Grant, entry.Offset, _data.AsSpan(entry.Start, entry.Length), defer: more, owner));
                }
                else
                {
                    owner.Dropped();
                }
            }

            lock (_lock)
            {
                _entries[_head % MaxEntries] = default;
                _usedBytes -= entry.Footprint;
                _head++;
            }
        }

        Close();
    }

    /// <summary>The oldest entry if it is committed or cancelled; <paramref name="more"/>: the next one is committed too.</summary>
    private bool TryTakeHead(out Entry entry, out bool more)
    {
        lock (_lock)
        {
            more = false;
            entry = default;
            if (!HeadIsReady())
            {
                return false;
            }

            entry = _entries[_head % MaxEntries];
            more = _head + 1 < _tail && Volatile.Read(ref _entries[(_head + 1) % MaxEntries].State) == Committed;
            return true;
        }
    }

    private void Sleep()
    {
        _work.Reset();
        Volatile.Write(ref _sleeping, 1);
        Interlocked.MemoryBarrier();
        if (_link.IsAlive && !HeadReady())
        {
            _work.Wait();
        }

        Volatile.Write(ref _sleeping, 0);
    }

    private bool HeadReady()
    {
        lock (_lock)
        {
            return HeadIsReady();
        }
    }

    /// <summary>The oldest entry is committed or cancelled (called holding the lock).</summary>
    private bool HeadIsReady() => _head != _tail && Volatile.Read(ref _entries[_head % MaxEntries].State) != Reserved;

    /// <summary>The link is dead: no more entries are taken, and those waiting are dropped (committed) or left to their producer.</summary>
    private void Close()
    {
        lock (_lock)
        {
            _closed = true;
        }

        while (true)
        {
            Entry entry;
            lock (_lock)
            {
                if (_head == _tail)
                {
                    return;
                }

                entry = _entries[_head % MaxEntries];
                if (entry.State == Reserved)
                {
                    // Its producer commits after this and, seeing the ring closed, drops it itself.
                    _entries[_head % MaxEntries] = default;
                    _head++;
                    continue;
                }

                _entries[_head % MaxEntries] = default;
                _head++;
            }

            if (entry.State == Committed)
            {
                entry.Owner!.Dropped();
            }
        }
    }

    private struct Entry
    {
        public int Start;
        public int Length;
        public int Footprint;
        public int State;
        public SlabGrant Grant;
        public long Offset;
        public IQueuedWrite? Owner;
    }
}
