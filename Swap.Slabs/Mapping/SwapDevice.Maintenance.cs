using Swap.BlockDevices;

namespace Swap.Slabs.Mapping;

public sealed partial class SwapDevice
{
    private static readonly byte[] Zeroes = new byte[1 << 20];

    private enum DiskOperation
    {
        Flush,
        Discard,
    }

    public ValueTask TrimAsync(long offset, long length, bool fua, CancellationToken cancellationToken) =>
        DiscardAsync(offset, length, writeZeroes: false, fua);

    public ValueTask WriteZeroesAsync(long offset, long length, bool noHole, bool fastOnly, bool fua, CancellationToken cancellationToken)
    {
        if (noHole && fastOnly)
        {
            return ValueTask.FromException(new BlockDeviceException(BlockDeviceError.NotSupported, "zeroing without a hole is not faster than writing"));
        }

        return DiscardAsync(offset, length, writeZeroes: noHole, fua);
    }

    /// <summary>TRIM and WRITE_ZEROES: the pages stop being valid on the daemon (which frees them), and the disk punches a hole or writes zeroes.</summary>
    private async ValueTask DiscardAsync(long offset, long length, bool writeZeroes, bool fua)
    {
        var end = offset + length;
        while (offset < end)
        {
            var n = PieceLength(offset, end - offset);
            var slab = (int)(offset >> _slabShift);
            var slabBase = (long)slab << _slabShift;
            var firstPage = (offset - slabBase) >> PageShift;
            var pages = ((offset + n - 1 - slabBase) >> PageShift) - firstPage + 1;
            var generation = _writers.Enter(slab);
            var mapping = Volatile.Read(ref _map[slab]);
            try
            {
                mapping?.Invalidate(firstPage, pages);
                if (writeZeroes)
                {
                    for (var done = 0L; done < n; done += Zeroes.Length)
                    {
                        DiskWrite(offset + done, Zeroes.AsSpan(0, (int)Math.Min(Zeroes.Length, n - done)));
                    }
                }
                else
                {
                    DiskOp(DiskOperation.Discard, offset, n);
                }
            }
            finally
            {
                mapping?.Invalidate(firstPage, pages);
                _writers.Exit(slab, generation);
            }

            // Whole pages only: a partly trimmed page still holds data.
            var wholeStart = (offset + PageSize - 1) & ~(long)(PageSize - 1);
            var wholeEnd = (offset + n) & ~(long)(PageSize - 1);
            if (wholeEnd > wholeStart)
            {
                if (!writeZeroes)
                {
                    _onDisk.Clear(wholeStart >> PageShift, (wholeEnd - wholeStart) >> PageShift);
                }

                if (mapping is not null && mapping.Usable)
                {
                    try
                    {
                        var fillSequence = Interlocked.Read(ref mapping.FillSequence);
                        var reply = await mapping.Link.TrimAsync(mapping.Grant, wholeStart - slabBase, wholeEnd - wholeStart).ConfigureAwait(false);
                        await Task.Yield(); // off the link's receive thread: the next piece punches the disk
                        if (writeZeroes && reply.Ok && mapping.Active && Interlocked.Read(ref mapping.FillSequence) == fillSequence)
                        {
                            // A trimmed daemon page reads as zeroes, like the disk's: valid again without sending a byte.
                            mapping.Valid.Set((wholeStart - slabBase) >> PageShift, (wholeEnd - wholeStart) >> PageShift);
                        }
                    }
                    catch (Remote.DaemonLinkException)
                    {
                        // Nothing to free on a daemon that is gone.
                    }
                }
            }

            offset += n;
        }

        if (fua)
        {
            DiskOp(DiskOperation.Flush, 0, 0);
        }
    }

    public int GetAllocation(long offset, long length, Span<AllocationExtent> extents)
    {
        var count = 0;
        var end = offset + length;
        while (offset < end && count < extents.Length)
        {
            var page = offset >> PageShift;
            var written = _onDisk.Get(page);
            var runEnd = Math.Min(end, _onDisk.NextDifferent(page, _onDisk.Pages, written) << PageShift);
            extents[count++] = new AllocationExtent(runEnd - offset, Hole: !written, Zero: !written);
            offset = runEnd;
        }

        return count;
    }

    /// <summary>Slabs with at least one page written (the ones placement wants on a daemon).</summary>
    public int SlabsWithData()
    {
        var count = 0;
        for (var slab = 0; slab < _map.Length; slab++)
        {
            count += HasData(slab) ? 1 : 0;
        }

        return count;
    }

    /// <summary>Where the device's pages are right now.</summary>
    public SwapDeviceStats GetStats()
    {
        var slabs = new int[_daemons.Length];
        var remote = new long[_daemons.Length];
        int mapped = 0, active = 0;
        foreach (var mapping in _map)
        {
            if (mapping is null || !mapping.Usable)
            {
                continue;
            }

            mapped++;
            active += mapping.State == SlabState.Active ? 1 : 0;
            var index = Array.IndexOf(_daemons, mapping.Daemon);
            slabs[index]++;
            remote[index] += mapping.Valid.Count();
        }

        var usage = new DaemonUsage[_daemons.Length];
        for (var i = 0; i < usage.Length; i++)
        {
            usage[i] = new DaemonUsage(_daemons[i].Name, _daemons[i].Link?.IsAlive == true, slabs[i], remote[i]);
        }

        return new SwapDeviceStats(_map.Length, mapped, active, _onDisk.Count(), remote.Sum(), usage);
    }

    private void DiskRead(long offset, Span<byte> destination)
    {
        try
        {
            _disk.Read(offset, destination);
        }
        catch (BlockDeviceException ex)
        {
            SlabLog.DiskError(_logger, ex.Message);
            throw;
        }
    }

    private void DiskWrite(long offset, ReadOnlySpan<byte> source)
    {
        try
        {
            _disk.Write(offset, source);
        }
        catch (BlockDeviceException ex)
        {
            SlabLog.DiskError(_logger, ex.Message);
            throw;
        }
    }

    private void DiskOp(DiskOperation operation, long offset, long length)
    {
        try
        {
            if (operation == DiskOperation.Flush)
            {
                _disk.Flush();
            }
            else
            {
                _disk.Discard(offset, length);
            }
        }
        catch (BlockDeviceException ex)
        {
            SlabLog.DiskError(_logger, ex.Message);
            throw;
        }
    }

    /// <summary>Stops placement, closes every daemon link and the backup disk.</summary>
    public async ValueTask StopAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var daemon in _daemons)
        {
            await daemon.DisposeAsync().ConfigureAwait(false);
        }

        _disk.Dispose();
    }

    public void Dispose() => StopAsync().AsTask().GetAwaiter().GetResult();
}
