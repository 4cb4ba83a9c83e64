using System.Runtime.CompilerServices;
using Swap.Common.Tasks;
using Swap.Slabs.Remote;
using Swap.Slabs.Sealing;

namespace Swap.Slabs.Mapping;

/// <summary>
/// TRIM and WRITE_ZEROES: the pages stop being valid on the daemon (which frees them), and the disk punches a hole or
/// writes zeroes. A daemon page trimmed by WRITE_ZEROES reads as zeroes, like the disk's, so it is valid again;
/// not when pages are sealed (<paramref name="sealedPages"/>: their stride ranges are trimmed): zeroes are no sealed
/// page, so those pages read from the disk until written again.
/// </summary>
internal sealed class DiscardPath(SlabTable table, ReportedDisk disk, bool sealedPages)
{
    private const int PageShift = SlabTable.PageShift;
    private const int PageSize = SlabTable.PageSize;

    private static readonly byte[] Zeroes = new byte[1 << 20];

    [AsyncMethodBuilder(typeof(RetainedValueTaskMethodBuilder))]
    public async ValueTask DiscardAsync(long offset, long length, bool writeZeroes, bool fua)
    {
        var end = offset + length;
        while (offset < end)
        {
            var n = table.PieceLength(offset, end - offset);
            var slab = table.SlabOf(offset);
            var slabBase = table.BaseOf(slab);
            var firstPage = (offset - slabBase) >> PageShift;
            var pages = ((offset + n - 1 - slabBase) >> PageShift) - firstPage + 1;
            var generation = table.Writers.Enter(slab);
            var mapping = table.Mapping(slab);
            try
            {
                mapping?.Invalidate(firstPage, pages);
                if (writeZeroes)
                {
                    for (var done = 0L; done < n; done += Zeroes.Length)
                    {
                        disk.Write(offset + done, Zeroes.AsSpan(0, (int)Math.Min(Zeroes.Length, n - done)));
                    }
                }
                else
                {
                    disk.Discard(offset, n);
                }
            }
            finally
            {
                mapping?.Invalidate(firstPage, pages);
                table.Writers.Exit(slab, generation);
            }

            // Whole pages only: a partly trimmed page still holds data.
            var wholeStart = (offset + PageSize - 1) & ~(long)(PageSize - 1);
            var wholeEnd = (offset + n) & ~(long)(PageSize - 1);
            if (wholeEnd > wholeStart)
            {
                if (!writeZeroes)
                {
                    table.OnDisk.Clear(wholeStart >> PageShift, (wholeEnd - wholeStart) >> PageShift);
                }

                if (mapping is not null && mapping.Usable)
                {
                    var writeZeroesValid = true;
                    try
                    {
                        var trimFirst = (wholeStart - slabBase) >> PageShift;
                        var trimPages = (wholeEnd - wholeStart) >> PageShift;
                        var unsentFirst = wholeStart >> PageShift;
                        if (table.Unsent.Next(unsentFirst, unsentFirst + trimPages, waiting: true) < unsentFirst + trimPages)
                        {
                            // An older write of these pages still waits in the link's queue and leaves after the TRIM:
                            // its reply must not make them valid (it moves the sequence it checks), nor may this one.
                            Interlocked.Increment(ref mapping.DiscardSequence);
                            writeZeroesValid = false;
                        }

                        var fillSequence = Interlocked.Read(ref mapping.FillSequence);
                        var trimmed = TrimAsync(mapping, trimFirst, trimPages);
                        if (sealedPages)
                        {
                            // A fill that copied these pages from the disk after the invalidations above may have sent
                            // its frame before the TRIM's, which then wipes the sealed copy: it must not make them valid
                            // (Touched), nor stay valid if it did already. Once when the TRIM has left, once when it is done.
                            mapping.Invalidate(trimFirst, trimPages);
                        }

                        var reply = await trimmed.ConfigureAwait(false);
                        await new ThreadPoolHop(); // off the link's receive thread: the next piece punches the disk
                        if (sealedPages)
                        {
                            mapping.Invalidate(trimFirst, trimPages);
                        }

                        if (writeZeroes && writeZeroesValid && !sealedPages && reply.Ok && mapping.Active && Interlocked.Read(ref mapping.FillSequence) == fillSequence)
                        {
                            mapping.Valid.Set(trimFirst, trimPages);
                        }
                    }
                    catch (DaemonLinkException)
                    {
                        // Nothing to free on a daemon that is gone.
                    }
                }
            }

            offset += n;
        }

        if (fua)
        {
            disk.Flush();
        }
    }

    /// <summary>Frees whole pages on the slab's daemon: their bytes, or their stride range when pages are sealed.</summary>
    private ValueTask<DaemonReply> TrimAsync(SlabMapping mapping, long firstPage, long pages)
    {
        if (sealedPages)
        {
            return mapping.Link.TrimAsync(mapping.Grant, SealedPage.DonorOffset(firstPage), pages * SealedPage.Stride);
        }

        return mapping.Link.TrimAsync(mapping.Grant, firstPage << PageShift, pages << PageShift);
    }
}
