namespace Swap.Slabs.Sealing;

/// <summary>
/// The write version of every page of the export, 4 bytes a page, allocated once and touched at start (so under
/// mlockall with MCL_ONFAULT it is locked before the first request). Sealing takes the next version of each page;
/// versions only grow, so with the page number they make every nonce of one key distinct. A page at
/// <see cref="uint.MaxValue"/> is never sealed again: it stays on the backup disk only.
/// </summary>
public sealed class PageVersions
{
    private readonly uint[] _versions;

    public PageVersions(long pages)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pages);
        _versions = GC.AllocateArray<uint>(checked((int)pages), pinned: true);
        for (var i = 0; i < _versions.Length; i += 1024)
        {
            _versions[i] = 0; // touch every 4 KiB of the table now
        }
    }

    public long Pages => _versions.Length;

    /// <summary>The version of the page's latest seal; 0 if it was never sealed.</summary>
    public uint Current(long page) => Volatile.Read(ref _versions[page]);

    /// <summary>Reserves the page's next version, or returns 0 when the page has used every one.</summary>
    public uint Next(long page)
    {
        ref var slot = ref _versions[page];
        var current = Volatile.Read(ref slot);
        while (current != uint.MaxValue)
        {
            var seen = Interlocked.CompareExchange(ref slot, current + 1, current);
            if (seen == current)
            {
                return current + 1;
            }

            current = seen;
        }

        return 0;
    }

    /// <summary>Copies the current versions of <paramref name="versions"/>.Length pages from <paramref name="firstPage"/>.</summary>
    public void Snapshot(long firstPage, Span<uint> versions)
    {
        for (var i = 0; i < versions.Length; i++)
        {
            versions[i] = Volatile.Read(ref _versions[firstPage + i]);
        }
    }

    /// <summary>Sets a page's version: for tests that reach the end of the range without 4 billion writes.</summary>
    internal void Set(long page, uint version) => Volatile.Write(ref _versions[page], version);
}
