using Swap.BlockDevices;
using Swap.Common.Buffers;
using Swap.Slabs.Sealing;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Writes a request piece by piece (one a slab): each piece is sent to its slab's daemon when the slab is active
/// (deferred, so small writes leave with the link's next request) and written to the disk, on the caller's thread.
/// The daemon's answer is settled later by <see cref="RemoteWrites"/>; a slab without a mapping is placed.
/// With a <paramref name="sealer"/>, the daemon gets the pages sealed (<see cref="SealedPage"/> format, sealed into a
/// pooled pinned buffer that goes back as soon as the link has sent or copied it), and pieces are at most
/// <see cref="SealedReads.ChunkPages"/> pages so one sealed piece is one frame.
/// </summary>
internal sealed class WritePath(SlabTable table, ReportedDisk disk, RemoteWrites remoteWrites, SlabPlacer placer, PageSealer? sealer)
{
    private const int PageShift = SlabTable.PageShift;
    private const int PageSize = SlabTable.PageSize;

    /// <summary>Part-page writes up to this size are completed from the disk and sent whole; larger ones leave their edge pages disk-only.</summary>
    private const int EdgeLimit = 1 << 20;

    /// <summary>Sealed pieces end at multiples of this many bytes of the device.</summary>
    private const long SealedPieceSize = (long)SealedReads.ChunkPages << PageShift;

    private readonly PageBitmap _onDisk = table.OnDisk;
    private readonly SlabWriters _writers = table.Writers;
    private readonly Lock _edgeLock = new();

    /// <summary>Every piece is on the disk and sent to its daemon when this returns; <paramref name="source"/> is not used after.</summary>
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            var n = table.PieceLength(offset, source.Length);
            if (sealer is not null)
            {
                n = (int)Math.Min(n, SealedPieceSize - (offset & (SealedPieceSize - 1)));
            }

            var piece = BeginPiece(offset, source[..n]);
            if (piece.Sent)
            {
                remoteWrites.Track(piece);
            }

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
    /// The synchronous half of a write within one slab: sends the pages to the daemon (when the slab is active) and
    /// writes the disk. <paramref name="source"/> is not used after this returns.
    /// </summary>
    private PendingPiece BeginPiece(long offset, ReadOnlySpan<byte> source)
    {
        var slab = table.SlabOf(offset);
        var slabBase = table.BaseOf(slab);
        var coverStart = offset & ~(long)(PageSize - 1);
        var coverEnd = (offset + source.Length + PageSize - 1) & ~(long)(PageSize - 1);
        var piece = new PendingPiece
        {
            Slab = slab,
            FirstPage = (coverStart - slabBase) >> PageShift,
            Pages = (coverEnd - coverStart) >> PageShift,
            Mapping = table.Mapping(slab),
        };
        var generation = _writers.Enter(slab);
        var mapping = piece.Mapping;
        try
        {
            // Before the write, so no read can take the daemon's old copy for current once the disk has the new one.
            mapping?.Invalidate(piece.FirstPage, piece.Pages);
            if (mapping is not null && mapping.Active)
            {
                piece.FillSequence = Interlocked.Read(ref mapping.FillSequence);
                if (coverStart == offset && coverEnd == offset + source.Length)
                {
                    // The swap case: whole pages, sent to the daemon first so its round trip overlaps the disk write.
                    piece.Sent = Send(ref piece, mapping, source);
                    disk.Write(offset, source);
                }
                else if (coverEnd - coverStart <= EdgeLimit)
                {
                    // Part pages: the daemon gets whole pages read back from the disk. Serialized, so two part-page
                    // writes to one page reach the daemon in the order their disk writes happened.
                    var length = (int)(coverEnd - coverStart);
                    var edge = PinnedBufferPool.Shared.Rent(length);
                    piece.Edge = edge;
                    lock (_edgeLock)
                    {
                        disk.Write(offset, source);
                        disk.Read(coverStart, edge.AsSpan(0, length));
                        piece.Sent = Send(ref piece, mapping, edge.AsSpan(0, length));
                    }

                    if (sealer is not null)
                    {
                        // Sealed into a buffer of its own, which the link is done with: the plain pages are not needed.
                        piece.Edge = null;
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
            // Again after the disk write: a fill that read the disk before it must not mark these pages valid.
            mapping?.Invalidate(piece.FirstPage, piece.Pages);
            _writers.Exit(slab, generation);
        }

        return piece;
    }

    /// <summary>
    /// Sends whole pages (the piece's) to the slab's daemon, sealed when sealing is on; false when they cannot leave
    /// the server (a page has used its last version), so they stay on the disk only.
    /// </summary>
    private bool Send(ref PendingPiece piece, SlabMapping mapping, ReadOnlySpan<byte> pages)
    {
        if (sealer is null)
        {
#pragma warning disable CA2012 // consumed exactly once, by the RemoteWrite that RemoteWrites.Track hands it to
            piece.Remote = mapping.Link.WriteAsync(mapping.Grant, piece.FirstPage << PageShift, pages, defer: true);
#pragma warning restore CA2012
            return true;
        }

        var sealedLength = (int)piece.Pages * SealedPage.Stride;
        var buffer = PinnedBufferPool.Shared.Rent(sealedLength);
        try
        {
            var firstPage = (piece.Slab * table.PagesPerSlab) + piece.FirstPage;
            if (!sealer.TrySeal(firstPage, pages, buffer.AsSpan(0, sealedLength)))
            {
                return false;
            }

            // The link has sent or copied the frame when WriteAsync returns: the buffer can go back at once.
#pragma warning disable CA2012 // consumed exactly once, by the RemoteWrite that RemoteWrites.Track hands it to
            piece.Remote = mapping.Link.WriteAsync(mapping.Grant, SealedPage.DonorOffset(piece.FirstPage), buffer.AsSpan(0, sealedLength), defer: true);
#pragma warning restore CA2012
            return true;
        }
        finally
        {
            PinnedBufferPool.Shared.Return(buffer);
        }
    }
}
