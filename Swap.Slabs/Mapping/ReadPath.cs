using Swap.Common.Tasks;
using System.Runtime.CompilerServices;
using Swap.Slabs.Hedging;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Reads a request piece by piece (one a slab), page run by page run: runs valid on the slab's daemon are read from
/// it, the rest from the disk. A daemon that answers anything but OK has its slab unmapped and the run read from disk.
/// With sealing on, runs valid on the daemon are read and opened by <see cref="SealedReads"/>. With a
/// <see cref="ReadHedger"/>, a daemon read slower than its link's bound is raced against the disk.
/// </summary>
internal sealed class ReadPath(SlabTable table, ReportedDisk disk, SlabPlacer placer, SealedReads? sealedReads, ReadHedger? hedger)
{
    /// <summary>Unsealed runs up to this are hedged (swap-in reads are 4-128 KiB); longer ones are read straight into place.</summary>
    public const int MaxHedgedBytes = 1 << 20;

    private const int PageShift = SlabTable.PageShift;
    private long _bytesFromDaemons;
    private long _bytesFromDisk;
    private long _hedgeBytesFromDisk;

    /// <summary>Bytes of READs answered by a daemon so far.</summary>
    public long BytesFromDaemons => Interlocked.Read(ref _bytesFromDaemons) - HedgeBytesFromDisk;

    /// <summary>Bytes of READs answered by the backup disk so far (unplaced slabs, pages not valid remotely, fallbacks,
    /// hedged reads the disk won).</summary>
    public long BytesFromDisk => Interlocked.Read(ref _bytesFromDisk) + HedgeBytesFromDisk;

    private long HedgeBytesFromDisk => Interlocked.Read(ref _hedgeBytesFromDisk) + (sealedReads?.HedgeBytesFromDisk ?? 0);

    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder))]
    public async ValueTask ReadAsync(long offset, Memory<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = table.PieceLength(offset, destination.Length);
            await ReadPieceAsync(offset, destination[..n]).ConfigureAwait(false);
            offset += n;
            destination = destination[n..];
        }
    }

    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder))]
    private async ValueTask ReadPieceAsync(long offset, Memory<byte> destination)
    {
        var slab = table.SlabOf(offset);
        var mapping = table.Mapping(slab);
        if (mapping is null || !mapping.Usable)
        {
            disk.Read(offset, destination.Span);
            Interlocked.Add(ref _bytesFromDisk, destination.Length);
            return;
        }

        // Page by page within the slab: runs valid on the daemon are read from it, the rest from the disk.
        var slabBase = table.BaseOf(slab);
        var end = offset + destination.Length;
        var position = offset;
        var awaitedRemote = false;
        while (position < end)
        {
            var page = (position - slabBase) >> PageShift;
            var lastPage = (end - 1 - slabBase) >> PageShift;
            var valid = mapping.Valid.Get(page);
            var runEndPage = mapping.Valid.NextDifferent(page, lastPage + 1, valid);
            var runEnd = Math.Min(end, slabBase + (runEndPage << PageShift));
            var run = destination.Slice((int)(position - offset), (int)(runEnd - position));
            // Unmapped since the last run (a drain, a failure): its pages may have been written to the disk alone since.
            valid = valid && mapping.Usable;
            if (valid && await TryRemoteReadAsync(slab, mapping, position - slabBase, run).ConfigureAwait(false))
            {
                awaitedRemote = true;
                Interlocked.Add(ref _bytesFromDaemons, run.Length);
            }
            else
            {
                if (awaitedRemote || valid)
                {
                    // Resumed on the daemon link's receive thread: the disk read belongs elsewhere.
                    await new ThreadPoolHop();
                }

                disk.Read(position, run.Span);
                Interlocked.Add(ref _bytesFromDisk, run.Length);
            }

            position = runEnd;
        }
    }

    /// <summary>True when the run came from the daemon; false: read it from the disk.</summary>
    private ValueTask<bool> TryRemoteReadAsync(int slab, SlabMapping mapping, long slabOffset, Memory<byte> destination)
    {
        if (sealedReads is not null)
        {
            return sealedReads.TryReadAsync(slab, mapping, slabOffset, destination);
        }

        return TryPlainReadAsync(slab, mapping, slabOffset, destination);
    }

    /// <summary>
    /// A prefetch of pages the caller found valid on the slab's daemon (checked again here, after the caller reserved
    /// the cache slot): read from the daemon, unhedged, opened when sealed. False: nothing usable landed.
    /// </summary>
    public ValueTask<bool> TryPrefetchAsync(int slab, SlabMapping mapping, long slabOffset, Memory<byte> destination)
    {
        if (!mapping.Usable || !mapping.Valid.All(slabOffset >> PageShift, destination.Length >> PageShift))
        {
            return new ValueTask<bool>(false);
        }

        return sealedReads is not null
            ? sealedReads.TryReadAsync(slab, mapping, slabOffset, destination, hedged: false)
            : TryPlainReadAsync(slab, mapping, slabOffset, destination, hedged: false);
    }

    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder<>))]
    private async ValueTask<bool> TryPlainReadAsync(int slab, SlabMapping mapping, long slabOffset, Memory<byte> destination, bool hedged = true)
    {
        if (hedged && hedger is not null && destination.Length <= MaxHedgedBytes && hedger.TryRent(destination.Length) is { } hedge)
        {
            return await TryHedgedReadAsync(hedger, hedge, slab, mapping, slabOffset, destination).ConfigureAwait(false);
        }

        try
        {
            var reply = await mapping.Link.ReadAsync(mapping.Grant, slabOffset, destination).ConfigureAwait(false);
            if (reply.Ok)
            {
                return true;
            }

            placer.Unmap(slab, mapping, $"daemon answered {reply.Status} to a read");
        }
        catch (DaemonLinkException)
        {
            // The link is down; the daemon pool unmaps every slab on it.
        }

        return false;
    }

    /// <summary>
    /// An unsealed read, hedged: the daemon reads into the entry's own buffer (the caller's may be answered and reused
    /// from the disk while the daemon's reply is still on the wire), copied into place if the daemon wins.
    /// </summary>
    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder<>))]
    private async ValueTask<bool> TryHedgedReadAsync(ReadHedger readHedger, HedgedRead hedge, int slab, SlabMapping mapping, long slabOffset, Memory<byte> destination)
    {
        try
        {
            var link = mapping.Link;
            var outcome = await hedge.Start(
                link.ReadAsync(mapping.Grant, slabOffset, hedge.DaemonBuffer.AsMemory(0, destination.Length)),
                readHedger.DeadlineFor(link.ReadLatency), table.BaseOf(slab) + slabOffset, destination.Length).ConfigureAwait(false);
            if (outcome.Refused is { } status)
            {
                placer.Unmap(slab, mapping, $"daemon answered {status} to a read");
            }

            switch (outcome.Winner)
            {
                case HedgeWinner.Daemon:
                    hedge.DaemonBuffer.AsSpan(0, destination.Length).CopyTo(destination.Span);
                    return true;
                case HedgeWinner.Disk:
                    hedge.DiskBuffer.AsSpan(0, destination.Length).CopyTo(destination.Span);
                    // Answered in place like a daemon's run (the caller counts it so); the disk's in fact.
                    Interlocked.Add(ref _hedgeBytesFromDisk, destination.Length);
                    return true;
                default:
                    return false;
            }
        }
        finally
        {
            hedge.Release();
        }
    }
}
