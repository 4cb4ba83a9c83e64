using Swap.Common.Tasks;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Swap.Common.Buffers;
using Swap.Slabs.Hedging;
using Swap.Slabs.Remote;
using Swap.Slabs.Sealing;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Reads a run of pages valid on a daemon when pages are sealed: the whole pages' stride range goes into a pooled
/// pinned buffer (one READ per <see cref="ChunkPages"/> pages), then each page is opened into the caller's buffer as
/// the version this server last sealed there. A page that fails to open makes the run read from the disk; unless
/// the page was sealed again or stopped being valid on the daemon meanwhile (a write or TRIM raced the read, the
/// donor is not to blame), it goes to <see cref="OpenFailures"/>. With a <see cref="ReadHedger"/>, the pooled buffer is
/// the hedged read's, and a daemon slower than its link's bound is raced against the disk (which holds plaintext:
/// a disk win is copied into place and nothing is opened).
/// </summary>
internal sealed class SealedReads(SlabTable table, PageSealer sealer, OpenFailures failures, SlabPlacer placer, ReadHedger? hedger)
{
    private long _hedgeBytesFromDisk;

    /// <summary>Bytes of hedged reads the disk won, answered in place (reported to the caller as served).</summary>
    public long HedgeBytesFromDisk => Interlocked.Read(ref _hedgeBytesFromDisk);

    /// <summary>Pages per READ: 1 MiB of plaintext, 1 MiB + 4 KiB on the wire, well under the frame limit.</summary>
    public const int ChunkPages = 256;

    private const int PageShift = SlabTable.PageShift;
    private const int PageSize = SlabTable.PageSize;

    /// <summary>True when all of <paramref name="destination"/> came from the daemon and opened; false: read it from the disk.</summary>
    /// <param name="hedged">False for a prefetch: nobody waits on it, so no disk read races it.</param>
    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder<>))]
    public async ValueTask<bool> TryReadAsync(int slab, SlabMapping mapping, long slabOffset, Memory<byte> destination, bool hedged = true)
    {
        while (!destination.IsEmpty)
        {
            var skip = (int)(slabOffset & (PageSize - 1));
            var pages = (int)Math.Min(ChunkPages, ((long)skip + destination.Length + PageSize - 1) >> PageShift);
            var length = (int)Math.Min(destination.Length, ((long)pages << PageShift) - skip);
            if (!await TryReadChunkAsync(slab, mapping, slabOffset >> PageShift, pages, skip, destination[..length], hedged).ConfigureAwait(false))
            {
                return false;
            }

            slabOffset += length;
            destination = destination[length..];
        }

        return true;
    }

    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder<>))]
    private async ValueTask<bool> TryReadChunkAsync(int slab, SlabMapping mapping, long pageInSlab, int pages, int skip, Memory<byte> destination, bool hedged)
    {
        var sealedLength = pages * SealedPage.Stride;
        var firstPage = ((long)slab * table.PagesPerSlab) + pageInSlab;
        // The sealed pages, then the versions they must open as.
        var bytes = sealedLength + (pages * sizeof(uint));
        var hedge = hedged ? hedger?.TryRent(bytes) : null;
        var buffer = hedge?.DaemonBuffer ?? PinnedBufferPool.Shared.Rent(bytes);
        try
        {
            sealer.Versions.Snapshot(firstPage, Versions(buffer, sealedLength, pages));
            // Checked after the snapshot: a write that took a newer version cleared these bits before it did.
            if (!mapping.Valid.All(pageInSlab, pages))
            {
                return false;
            }

            var read = mapping.Link.ReadAsync(mapping.Grant, SealedPage.DonorOffset(pageInSlab), buffer.AsMemory(0, sealedLength));
            if (hedge is not null)
            {
                var outcome = await hedge.Start(read, hedger!.DeadlineFor(mapping.Link.ReadLatency),
                    table.BaseOf(slab) + (pageInSlab << PageShift) + skip, destination.Length).ConfigureAwait(false);
                if (outcome.Refused is { } refused)
                {
                    placer.Unmap(slab, mapping, $"daemon answered {refused} to a read");
                }

                if (outcome.Winner != HedgeWinner.Daemon)
                {
                    if (outcome.Winner == HedgeWinner.Neither)
                    {
                        return false;
                    }

                    hedge.DiskBuffer.AsSpan(0, destination.Length).CopyTo(destination.Span);
                    Interlocked.Add(ref _hedgeBytesFromDisk, destination.Length);
                    return true;
                }
            }
            else
            {
                var reply = await read.ConfigureAwait(false);
                if (!reply.Ok)
                {
                    placer.Unmap(slab, mapping, $"daemon answered {reply.Status} to a read");
                    return false;
                }
            }

            var versions = Versions(buffer, sealedLength, pages);
            var failed = sealer.Open(firstPage, versions, buffer.AsSpan(0, sealedLength), destination.Span, skip);
            if (failed < 0)
            {
                return true;
            }

            // Not the donor's fault if the page changed meanwhile: sealed again (a write raced the read), or made
            // invalid on the daemon (a write or a TRIM whose frame went before this READ's).
            if (sealer.Versions.Current(firstPage + failed) == versions[failed] && mapping.Valid.Get(pageInSlab + failed))
            {
                failures.Report(slab, mapping, firstPage + failed);
            }

            return false;
        }
        catch (DaemonLinkException)
        {
            // The link is down; the daemon pool unmaps every slab on it.
            return false;
        }
        finally
        {
            if (hedge is not null)
            {
                hedge.Release();
            }
            else
            {
                PinnedBufferPool.Shared.Return(buffer);
            }
        }
    }

    private static Span<uint> Versions(byte[] buffer, int sealedLength, int pages) =>
        MemoryMarshal.Cast<byte, uint>(buffer.AsSpan(sealedLength, pages * sizeof(uint)));
}
