using Microsoft.Extensions.Logging;
using Swap.BlockDevices;
using Swap.Common.Buffers;
using Swap.Slabs.Remote;
using Swap.Slabs.Sealing;

namespace Swap.Slabs.Mapping;

/// <summary>
/// Copies a newly placed slab's pages from the backup disk to its daemon, at most ParallelFills slabs at a time, each
/// through one pooled buffer of <see cref="CopyChunkSize"/> bytes (and, with a <paramref name="sealer"/>, a second
/// one the chunk is sealed into).
/// </summary>
#pragma warning disable CA1001 // never disposed, as before: a fill that StopAsync cancels still releases the semaphore, which holds no handle
internal sealed class SlabFiller(SlabTable table, ReportedDisk disk, int parallelFills, PageSealer? sealer, TimeProvider time, ILogger logger)
{
    /// <summary>Size of the buffer that copies a slab's pages from the backup disk to its new daemon.</summary>
    public const int CopyChunkSize = 1 << 20;

    private const int PageShift = SlabTable.PageShift;

    private readonly SemaphoreSlim _fills = new(parallelFills);

    /// <summary>
    /// Copies the slab's pages from the disk to its new daemon. While filling, writes go to the disk only and mark
    /// their pages, which the next pass copies again. Then the mapping turns active, the writes that may still have
    /// seen it filling are waited for, and a last round of passes copies what they left, so the daemon's copy is
    /// complete again. Returns why the slab must be unmapped, or null when it is filled or its link failed (the
    /// daemon pool unmaps the slabs of a lost link).
    /// </summary>
    public async Task<string?> FillAsync(int slab, SlabMapping mapping, CancellationToken cancellationToken)
    {
        await _fills.WaitAsync(cancellationToken).ConfigureAwait(false);
        var buffer = PinnedBufferPool.Shared.Rent(CopyChunkSize);
        var sealedBuffer = sealer is null ? null : PinnedBufferPool.Shared.Rent(CopyChunkSize / SealedPage.PageSize * SealedPage.Stride);
        try
        {
            // Writes that began under the previous mapping may still be writing the disk: let them finish first.
            await table.Writers.DrainAsync(slab, time, cancellationToken).ConfigureAwait(false);
            var copied = await CopyPassesAsync(slab, mapping, buffer, sealedBuffer).ConfigureAwait(false);
            mapping.Activate();
            await table.Writers.DrainAsync(slab, time, cancellationToken).ConfigureAwait(false);
            var copiedRound = await CopyPassesAsync(slab, mapping, buffer, sealedBuffer).ConfigureAwait(false);
            copied += copiedRound;
            // A write under way during those passes clears its pages once its disk write is done, possibly after a
            // pass marked them valid, and its own reply cannot mark them (the fill's writes moved the sequence): left
            // alone they would stay disk-only for good. Wait for such writes, then copy what they left, until a round
            // finds nothing. Slow disk writes (direct I/O) make that window wide.
            for (var round = 0; round < 8 && copiedRound > 0; round++)
            {
                await table.Writers.DrainAsync(slab, time, cancellationToken).ConfigureAwait(false);
                copiedRound = await CopyPassesAsync(slab, mapping, buffer, sealedBuffer).ConfigureAwait(false);
                copied += copiedRound;
            }

            SlabLog.Filled(logger, slab, mapping.Daemon.Name, copied);
            return null;
        }
        catch (DaemonLinkException)
        {
            return null;
        }
        catch (FillAbortedException ex)
        {
            return ex.Message;
        }
        catch (BlockDeviceException ex)
        {
            SlabLog.FillFailed(logger, slab, ex.Message);
            return "the backup disk failed while filling";
        }
        finally
        {
            PinnedBufferPool.Shared.Return(buffer);
            if (sealedBuffer is not null)
            {
                PinnedBufferPool.Shared.Return(sealedBuffer);
            }

            _fills.Release();
        }
    }

    /// <summary>Copies pages that are on disk but not valid on the daemon, pass after pass until one finds none (at most 16).</summary>
    private async Task<long> CopyPassesAsync(int slab, SlabMapping mapping, byte[] buffer, byte[]? sealedBuffer)
    {
        var onDisk = table.OnDisk;
        var slabBase = table.BaseOf(slab);
        var firstPage = (long)slab * table.PagesPerSlab;
        var pages = table.PagesIn(slab);
        long copied = 0;
        for (var pass = 0; pass < 16; pass++)
        {
            long copiedThisPass = 0;
            var page = 0L;
            while (page < pages)
            {
                page = onDisk.NextDifferent(firstPage + page, firstPage + pages, value: false) - firstPage;
                if (page >= pages)
                {
                    break;
                }

                if (mapping.Valid.Get(page))
                {
                    page++;
                    continue;
                }

                var end = Math.Min(Math.Min(pages, page + (CopyChunkSize >> PageShift)), onDisk.NextDifferent(firstPage + page, firstPage + pages, value: true) - firstPage);
                end = mapping.Valid.NextDifferent(page, end, value: false);
                var count = end - page;
                var length = (int)(count << PageShift);
                mapping.BeginFill(page, count);
                disk.Read(slabBase + (page << PageShift), buffer.AsSpan(0, length));
                if (!mapping.Usable)
                {
                    throw new DaemonLinkException("mapping gone while filling");
                }

                ReadOnlySpan<byte> payload = buffer.AsSpan(0, length);
                var remoteOffset = page << PageShift;
                if (sealer is not null)
                {
                    payload = sealedBuffer!.AsSpan(0, (int)count * SealedPage.Stride);
                    remoteOffset = SealedPage.DonorOffset(page);
                    if (!sealer.TrySeal(firstPage + page, buffer.AsSpan(0, length), sealedBuffer))
                    {
                        // A page has used its last version: this chunk stays on the disk only.
                        page = end;
                        continue;
                    }
                }

                Interlocked.Increment(ref mapping.FillSequence);
                var sent = mapping.Link.WriteAsync(mapping.Grant, remoteOffset, payload);
                // Again once the frame is sent: a write that read the sequence between the first bump and the send
                // may have left before this frame, and this older copy may have landed last.
                Interlocked.Increment(ref mapping.FillSequence);
                var reply = await sent.ConfigureAwait(false);
                await Task.Yield(); // off the link's receive thread: the next chunk reads the disk
                if (!reply.Ok)
                {
                    throw new FillAbortedException($"daemon answered {reply.Status} while filling");
                }

                mapping.Filled(page, count, table.Unsent, firstPage);
                copiedThisPass += count;
                page = end;
            }

            copied += copiedThisPass;
            if (copiedThisPass == 0)
            {
                break;
            }
        }

        return copied;
    }

    private sealed class FillAbortedException(string message) : Exception(message);
}
#pragma warning restore CA1001
