using System.Collections.Concurrent;
using Swap.Daemon.Protocol;
using Swap.Donor.Slabs;
using Swap.Slabs.Sealing;

namespace Swap.Nbd.Tests.Faults;

/// <summary>
/// A malicious donor, as a layer over an in-process daemon's connections (see <see cref="TamperingDonorTransport"/>):
/// with a <see cref="DonorLie"/> switched on, it changes the pages READ replies carry or the WRITEs the daemon
/// stores, using the daemon's own slab store (<see cref="Slabs"/>) and, for older versions, the pages it saw written.
/// Counts every reply or write it changed, so a test knows the lie was told.
/// </summary>
internal sealed class DonorLies
{
    private readonly ConcurrentDictionary<(uint SlabId, uint Epoch, long Page), PageHistory> _history = new();
    private int _active;
    private long _told;

    /// <summary>The lie told now.</summary>
    public DonorLie Active
    {
        get => (DonorLie)Volatile.Read(ref _active);
        set => Volatile.Write(ref _active, (int)value);
    }

    /// <summary>Keep the last two versions of every page written (sealed stride pages), for <see cref="DonorLie.OlderVersion"/>.</summary>
    public bool Record { get; set; }

    /// <summary>The daemon's slab store; the lies that take another page, or keep the old one, read it.</summary>
    public DonorSlabTable? Slabs { get; set; }

    /// <summary>READ replies and WRITEs changed so far.</summary>
    public long Told => Interlocked.Read(ref _told);

    /// <summary>A WRITE's payload bytes at <paramref name="slabOffset"/>, about to be stored: recorded, or replaced by what the slab holds there.</summary>
    internal void OnWrite(SlabRange range, long slabOffset, Span<byte> bytes, ref PageAssembly assembly)
    {
        if (Record)
        {
            assembly.Add(this, range, slabOffset, bytes);
        }

        if (Active == DonorLie.DropWrites && Find(range) is { } slab && slab.TryAcquire())
        {
            try
            {
                slab.Device.TryRead(slabOffset, bytes);
                Interlocked.Increment(ref _told);
            }
            finally
            {
                slab.Release();
            }
        }
    }

    /// <summary>A READ reply's data bytes at <paramref name="slabOffset"/> of <paramref name="range"/>, about to be sent: changed by the lie told.</summary>
    internal void OnReadReply(SlabRange range, long slabOffset, Span<byte> bytes)
    {
        var lie = Active;
        var changed = lie switch
        {
            DonorLie.FlipBit => FlipBits(slabOffset, bytes),
            DonorLie.Zeros => Clear(bytes),
            DonorLie.OtherPage => CopyFrom(Find(range), range, slabOffset + ((long)range.Offset + range.Length + SealedPage.Stride <= SlabSize(range) ? SealedPage.Stride : -SealedPage.Stride), bytes),
            DonorLie.OtherServersPage => CopyFrom(OtherOwners(range), range, slabOffset, bytes),
            DonorLie.OlderVersion => Older(range, slabOffset, bytes),
            _ => false,
        };
        if (changed)
        {
            Interlocked.Increment(ref _told);
        }
    }

    internal void Recorded(SlabRange range, long page, byte[] contents) =>
        _history.GetOrAdd((range.SlabId, range.Epoch, page), static _ => new PageHistory()).Add(contents);

    private DonorSlab? Find(SlabRange range) => Slabs?.Find(range.SlabId) is { } slab && slab.Epoch == range.Epoch ? slab : null;

    private long SlabSize(SlabRange range) => Find(range)?.Size ?? 0;

    /// <summary>A slab of another client that is as large as this one.</summary>
    private DonorSlab? OtherOwners(SlabRange range)
    {
        if (Find(range) is not { } mine)
        {
            return null;
        }

        for (var id = 1u; id < 4096; id++)
        {
            if (Slabs!.Find(id) is { } other && other.Owner != mine.Owner && other.Size >= mine.Size)
            {
                return other;
            }
        }

        return null;
    }

    private static bool FlipBits(long slabOffset, Span<byte> bytes)
    {
        // Byte 100 of every stride page in these bytes.
        var changed = false;
        var first = 100 - (slabOffset % SealedPage.Stride);
        if (first < 0)
        {
            first += SealedPage.Stride;
        }

        for (var i = first; i < bytes.Length; i += SealedPage.Stride)
        {
            bytes[(int)i] ^= 0x01;
            changed = true;
        }

        return changed;
    }

    private static bool Clear(Span<byte> bytes)
    {
        bytes.Clear();
        return true;
    }

    private static bool CopyFrom(DonorSlab? slab, SlabRange range, long sourceOffset, Span<byte> bytes)
    {
        if (slab is null || sourceOffset < 0 || sourceOffset + bytes.Length > slab.Size || !slab.TryAcquire())
        {
            return false;
        }

        try
        {
            slab.Device.TryRead(sourceOffset, bytes);
            return true;
        }
        finally
        {
            slab.Release();
        }
    }

    private bool Older(SlabRange range, long slabOffset, Span<byte> bytes)
    {
        var changed = false;
        var position = 0;
        while (position < bytes.Length)
        {
            var offset = slabOffset + position;
            var page = offset / SealedPage.Stride;
            var inPage = (int)(offset % SealedPage.Stride);
            var n = Math.Min(bytes.Length - position, SealedPage.Stride - inPage);
            if (_history.TryGetValue((range.SlabId, range.Epoch, page), out var history) && history.Previous() is { } older)
            {
                older.AsSpan(inPage, n).CopyTo(bytes[position..]);
                changed = true;
            }

            position += n;
        }

        return changed;
    }

    /// <summary>The last two contents written to one stride page.</summary>
    private sealed class PageHistory
    {
        private readonly Lock _lock = new();
        private byte[]? _latest;
        private byte[]? _previous;

        public void Add(byte[] contents)
        {
            lock (_lock)
            {
                _previous = _latest;
                _latest = contents;
            }
        }

        public byte[]? Previous()
        {
            lock (_lock)
            {
                return _previous;
            }
        }
    }

    /// <summary>Collects one connection's WRITE payload into whole stride pages for the history.</summary>
    internal struct PageAssembly
    {
        private byte[]? _page;
        private long _pageIndex;
        private int _filled;

        public void Add(DonorLies lies, SlabRange range, long slabOffset, ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var page = slabOffset / SealedPage.Stride;
                var inPage = (int)(slabOffset % SealedPage.Stride);
                var n = Math.Min(bytes.Length, SealedPage.Stride - inPage);
                if (_page is null || page != _pageIndex || inPage != _filled)
                {
                    if (inPage != 0)
                    {
                        // Not the start of a stride page (not a sealed write): nothing to record.
                        _page = null;
                        slabOffset += n;
                        bytes = bytes[n..];
                        continue;
                    }

                    _page = new byte[SealedPage.Stride];
                    _pageIndex = page;
                    _filled = 0;
                }

                bytes[..n].CopyTo(_page.AsSpan(inPage));
                _filled += n;
                if (_filled == SealedPage.Stride)
                {
                    lies.Recorded(range, page, _page);
                    _page = null;
                }

                slabOffset += n;
                bytes = bytes[n..];
            }
        }
    }
}
