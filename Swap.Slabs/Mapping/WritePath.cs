using System.Runtime.CompilerServices;
using Swap.BlockDevices;
using Swap.Common.Buffers;
using Swap.Slabs.Backup;
using Swap.Slabs.Sealing;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Writes a request piece by piece (one a slab), on the caller's thread: each piece is written to the disk and, when
/// its slab is active, queued for its daemon (<see cref="RemoteWrites"/>: copied, or sealed, into the link's
/// write-behind queue, which the link's own thread sends). The caller never waits on a daemon's socket: a write is
/// done when the disk has it. A slab without a mapping is placed.
/// With a <paramref name="sealer"/>, the daemon gets the pages sealed (<see cref="SealedPage"/> format, sealed
/// straight into the queue), and pieces are at most <see cref="SealedReads.ChunkPages"/> pages so one sealed piece
/// is one frame.
/// </summary>
internal sealed class WritePath(SlabTable table, ReportedDisk disk, RemoteWrites remoteWrites, SlabPlacer placer, PageSealer? sealer)
{
    private const int PageShift = SlabTable.PageShift;
    private const int PageSize = SlabTable.PageSize;

    /// <summary>Part-page writes up to this size are completed from the disk and sent whole; larger ones leave their edge pages disk-only.</summary>
    private const int EdgeLimit = 1 << 20;

    /// <summary>Unsealed pieces are queued in frames of at most this many pages.</summary>
    private const int FramePages = 64;

    /// <summary>Sealed pieces end at multiples of this many bytes of the device.</summary>
    private const long SealedPieceSize = (long)SealedReads.ChunkPages << PageShift;

    private readonly PageBitmap _onDisk = table.OnDisk;
    private readonly SlabWriters _writers = table.Writers;
    private readonly WriteOrderLocks _order = new();

    /// <summary>Sealed whole-page pieces larger than this are sealed while their disk write is in flight (<see cref="SealAhead"/>).</summary>
    private const int SealAheadMinimum = 32 * 1024;

    /// <summary>Writes <see cref="TryWriteBatch"/> takes at most.</summary>
    public const int MaxBatch = 32;

    /// <summary>Every piece is on the disk and queued for its daemon when this returns; <paramref name="source"/> is not used after.</summary>
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            var n = table.PieceLength(offset, source.Length);
            if (sealer is not null)
            {
                n = (int)Math.Min(n, SealedPieceSize - (offset & (SealedPieceSize - 1)));
            }

            var piece = WritePiece(offset, source[..n]);
            if (piece.DiskError is not null)
            {
                throw piece.DiskError;
            }

            if (piece.Mapping is null)
            {
                placer.EnsurePlaced(piece.Slab);
            }

            offset += n;
            source = source[n..];
        }
    }

    /// <summary>
    /// Writes a batch as <see cref="Write"/> writes each, with the disk writes in flight together
    /// (<see cref="Backup.IBackupStore.WriteMany"/>): the stripes of every write are held from before the disk writes until
    /// the remote copies are queued, as one write holds its own. Only whole-page writes within one piece (one slab, one
    /// sealed chunk) and no two of the same page: otherwise false and nothing is
    /// written (write them one by one). <paramref name="errors"/>[i] gets write i's disk failure, or null.
    /// </summary>
    public bool TryWriteBatch(ReadOnlySpan<BlockWrite> writes, Span<BlockDeviceException?> errors)
    {
        if (writes.Length > MaxBatch)
        {
            return false;
        }

        Span<ulong> stripes = stackalloc ulong[WriteOrderLocks.StripeSetLength];
        for (var i = 0; i < writes.Length; i++)
        {
            var write = writes[i];
            var length = write.Data.Length;
            if (length == 0 || ((write.Offset | (long)length) & (PageSize - 1)) != 0 || table.PieceLength(write.Offset, length) != length ||
                (sealer is not null && (write.Offset & (SealedPieceSize - 1)) + length > SealedPieceSize))
            {
                return false;
            }

            // Two writes of one page in flight together would reach the disk in either order: those go one by one.
            // Neighbours (swap-outs of adjacent slots) share a stripe, which the batch takes once.
            for (var j = 0; j < i; j++)
            {
                if (write.Offset < writes[j].Offset + writes[j].Data.Length && writes[j].Offset < write.Offset + length)
                {
                    return false;
                }
            }

            WriteOrderLocks.Mark(stripes, write.Offset, write.Offset + length);
        }

        var batch = default(PieceBatch);
        Span<PendingPiece> pieces = batch;
        Span<int> generations = stackalloc int[MaxBatch];
        Span<bool> active = stackalloc bool[MaxBatch];
        Span<bool> queued = stackalloc bool[MaxBatch];
        var entered = 0;
        var ordered = false;
        try
        {
            for (var i = 0; i < writes.Length; i++)
            {
                pieces[i] = PieceOf(writes[i].Offset, writes[i].Offset + writes[i].Data.Length);
                generations[i] = _writers.Enter(pieces[i].Slab);
                entered++;
            }

            _order.EnterMarked(stripes);
            ordered = true;
            for (var i = 0; i < writes.Length; i++)
            {
                var mapping = pieces[i].Mapping;
                mapping?.Invalidate(pieces[i].FirstPage, pieces[i].Pages);
                if (mapping is not null && mapping.Active)
                {
                    active[i] = true;
                    pieces[i].DiscardSequence = Interlocked.Read(ref mapping.DiscardSequence);
                }
            }

            disk.WriteMany(writes, errors);
            for (var i = 0; i < writes.Length; i++)
            {
                if (errors[i] is not null)
                {
                    continue;
                }

                if (active[i])
                {
                    Queue(pieces[i], pieces[i].Mapping!, writes[i].Data.Span);
                    queued[i] = true;
                }

                _onDisk.Set(writes[i].Offset >> PageShift, pieces[i].Pages);
            }
        }
        finally
        {
            for (var i = 0; i < entered; i++)
            {
                if (!queued[i])
                {
                    // As in WritePiece: a fill that read the disk before the write must not mark these pages valid.
                    pieces[i].Mapping?.Invalidate(pieces[i].FirstPage, pieces[i].Pages);
                }
            }

            if (ordered)
            {
                _order.ExitMarked(stripes);
            }

            for (var i = 0; i < entered; i++)
            {
                _writers.Exit(pieces[i].Slab, generations[i]);
            }
        }

        for (var i = 0; i < writes.Length; i++)
        {
            if (errors[i] is null && pieces[i].Mapping is null)
            {
                placer.EnsurePlaced(pieces[i].Slab);
            }
        }

        return true;
    }

    /// <summary>
    /// A write within one slab: the disk first, then (when the slab is active) the remote copy queued. The pages are
    /// invalidated on the daemon before and again after, so no read takes its old copy once the disk has the new one
    /// and no fill that read the disk before marks them valid. <paramref name="source"/> is not used after this returns.
    /// </summary>
    private PendingPiece WritePiece(long offset, ReadOnlySpan<byte> source)
    {
        var coverStart = offset & ~(long)(PageSize - 1);
        var coverEnd = (offset + source.Length + PageSize - 1) & ~(long)(PageSize - 1);
        var piece = PieceOf(coverStart, coverEnd);
        var slab = piece.Slab;
        var generation = _writers.Enter(slab);
        var order = _order.Enter(coverStart, coverEnd);
        var mapping = piece.Mapping;
        var queued = false;
        try
        {
            mapping?.Invalidate(piece.FirstPage, piece.Pages);
            if (mapping is not null && mapping.Active)
            {
                piece.DiscardSequence = Interlocked.Read(ref mapping.DiscardSequence);
                if (coverStart == offset && coverEnd == offset + source.Length && sealer is not null && source.Length > SealAheadMinimum)
                {
                    // The swap case, large: whole pages, sealed while the disk writes them.
                    var ahead = new SealAhead(remoteWrites, sealer, GlobalFirstPage(piece), piece, mapping, source);
                    try
                    {
                        disk.WriteWhile(offset, source, ref ahead);
                    }
                    catch (BlockDeviceException)
                    {
                        ahead.Cancel();
                        throw;
                    }

                    ahead.Commit();
                    queued = true;
                }
                else if (coverStart == offset && coverEnd == offset + source.Length)
                {
                    // The swap case: whole pages.
                    disk.Write(offset, source);
                    Queue(piece, mapping, source);
                    queued = true;
                }
                else if (coverEnd - coverStart <= EdgeLimit)
                {
                    // Part pages: the daemon gets whole pages read back from the disk. Two writes of one page are
                    // queued in the order their disk writes happened: both hold its stripe of _order throughout.
                    var length = (int)(coverEnd - coverStart);
                    var edge = PinnedBufferPool.Shared.Rent(length);
                    try
                    {
                        disk.Write(offset, source);
                        disk.Read(coverStart, edge.AsSpan(0, length));
                        Queue(piece, mapping, edge.AsSpan(0, length));
                        queued = true;
                    }
                    finally
                    {
                        PinnedBufferPool.Shared.Return(edge);
                    }
                }
                else
                {
                    disk.Write(offset, source);
                }
            }
            else
            {
                disk.Write(offset, source);
            }

            _onDisk.Set(coverStart >> PageShift, piece.Pages);
        }
        catch (BlockDeviceException ex)
        {
            piece.DiskError = ex;
        }
        finally
        {
            if (!queued)
            {
                // Again after the disk write: a fill that read the disk before it must not mark these pages valid.
                // (Queue did so before its frames could leave: after that a fast reply may have made them valid.)
                mapping?.Invalidate(piece.FirstPage, piece.Pages);
            }

            _order.Exit(order);
            _writers.Exit(slab, generation);
        }

        return piece;
    }

    /// <summary>
    /// Queues the piece's whole pages for the slab's daemon: sealed, as one frame (<see cref="SealAhead"/>), or in
    /// frames of at most <see cref="FramePages"/> pages. Pages whose frame finds the queue full, or that cannot be sealed (a page has
    /// used its last version), stay on the disk only.
    /// </summary>
    private void Queue(in PendingPiece whole, SlabMapping mapping, ReadOnlySpan<byte> pages)
    {
        if (sealer is not null)
        {
            // One frame, prepared and committed as a large piece's is during its disk write, only after it here.
            var ahead = new SealAhead(remoteWrites, sealer, GlobalFirstPage(whole), whole, mapping, pages);
            ahead.Run();
            ahead.Commit();
            return;
        }

        // Again after the disk write, before any frame can leave and be answered: a fill that read the disk before
        // it must not mark these pages valid.
        mapping.Invalidate(whole.FirstPage, whole.Pages);
        for (var done = 0L; done < whole.Pages; done += FramePages)
        {
            var piece = whole;
            piece.FirstPage = whole.FirstPage + done;
            piece.Pages = Math.Min(FramePages, whole.Pages - done);
            var plain = pages.Slice((int)(done << PageShift), (int)(piece.Pages << PageShift));
            if (remoteWrites.TryReserve(mapping, plain.Length, out var ticket, out var payload))
            {
                plain.CopyTo(payload);
                remoteWrites.Commit(piece, ticket, piece.FirstPage << PageShift);
            }
        }
    }

    /// <summary>The device page a piece starts at (what pages are sealed under).</summary>
    private long GlobalFirstPage(in PendingPiece piece) => (piece.Slab * table.PagesPerSlab) + piece.FirstPage;

    /// <summary>The piece of the whole pages [<paramref name="coverStart"/>, <paramref name="coverEnd"/>) of one slab, with the slab's current mapping.</summary>
    private PendingPiece PieceOf(long coverStart, long coverEnd)
    {
        var slab = table.SlabOf(coverStart);
        return new PendingPiece
        {
            Slab = slab,
            FirstPage = (coverStart - table.BaseOf(slab)) >> PageShift,
            Pages = (coverEnd - coverStart) >> PageShift,
            Mapping = table.Mapping(slab),
        };
    }

    /// <summary>
    /// A sealed piece's remote copy (one frame): its place in the link's queue reserved and its pages sealed into it,
    /// then, once the disk has the write, the pages invalidated again and the entry committed, or given up if the disk
    /// failed. A large piece does the first half while its disk write is in flight (<see cref="IWhileWriting"/>);
    /// <see cref="Queue"/> does both after the write.
    /// Nothing leaves before the commit: a reserved entry holds the link's queue behind it. Sealing 128 KiB costs about
    /// as much as the disk's round trip for it on this project's VM, so overlapping the two halves the wait.
    /// </summary>
    private ref struct SealAhead(RemoteWrites remoteWrites, PageSealer sealer, long globalFirstPage, PendingPiece piece, SlabMapping mapping, ReadOnlySpan<byte> plain)
        : IWhileWriting
    {
        private readonly ReadOnlySpan<byte> _plain = plain;
        private long _ticket;
        private bool _reserved;

        public void Run()
        {
            var sealedLength = (int)piece.Pages * SealedPage.Stride;
            if (!remoteWrites.TryReserve(mapping, sealedLength, out _ticket, out var sealedPayload))
            {
                return;
            }

            if (sealer.TrySeal(globalFirstPage, _plain, sealedPayload))
            {
                _reserved = true;
            }
            else
            {
                RemoteWrites.Cancel(mapping, _ticket);
            }
        }

        /// <summary>The disk has the write: the pages invalidated again (a fill that read the disk before must not mark them valid), then queued.</summary>
        public readonly void Commit()
        {
            mapping.Invalidate(piece.FirstPage, piece.Pages);
            if (_reserved)
            {
                remoteWrites.Commit(piece, _ticket, SealedPage.DonorOffset(piece.FirstPage));
            }
        }

        /// <summary>The disk failed the write: its sealed copy never leaves.</summary>
        public void Cancel()
        {
            if (_reserved)
            {
                RemoteWrites.Cancel(mapping, _ticket);
                _reserved = false;
            }
        }
    }

    /// <summary>The pieces of one batch, on the stack.</summary>
    [InlineArray(MaxBatch)]
    private struct PieceBatch
    {
        private PendingPiece _first;
    }
}
