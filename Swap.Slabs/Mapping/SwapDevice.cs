using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Swap.Slabs.Backup;
using Swap.Common.Buffers;
using Swap.BlockDevices;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>
/// The swap device: an address space cut into slabs, each placed on a donor daemon (power of two choices) and every
/// page mirrored on the backup disk. Writes go to the daemon and the disk; a write is acknowledged when the disk has
/// it and the daemon has been sent it, and its pages become valid on the daemon when the daemon answers.
/// Reads go to the daemon when the page is valid there, else to the disk. Losing a daemon, an eviction, a timeout or
/// a daemon that breaks the protocol unmaps its slabs at once (reads fall back to the disk, no error reaches the
/// client) and the slabs are re-placed in the background, their pages copied back from the disk.
/// </summary>
public sealed partial class SwapDevice : IBlockDevice
{
    internal const int PageShift = 12;
    internal const int PageSize = 1 << PageShift;

    /// <summary>Part-page writes up to this size are completed from the disk and sent whole; larger ones leave their edge pages disk-only.</summary>
    private const int EdgeLimit = 1 << 20;

    private readonly IBackupStore _disk;
    private readonly SwapDeviceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _slabShift;
    private readonly long _pagesPerSlab;
    private readonly SlabMapping?[] _map;
    private readonly int[] _placement;
    private readonly int[] _retries;
    private readonly PageBitmap _onDisk;
    private readonly DaemonEndpoint[] _daemons;
    private readonly SlabWriters _writers;
    private readonly Lock _edgeLock = new();

    public SwapDevice(long size, IBackupStore disk, IReadOnlyList<(string Name, EndPoint EndPoint)> daemons, SwapDeviceOptions options,
        TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        if (size % PageSize != 0)
        {
            throw new ArgumentException($"the size must be a multiple of {PageSize}", nameof(size));
        }
        if (disk.Size < size)
        {
            throw new ArgumentException($"the backup disk holds {disk.Size} bytes, the device needs {size}", nameof(disk));
        }

        Size = size;
        _disk = disk;
        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Swap.Slabs.SwapDevice");
        _slabShift = System.Numerics.BitOperations.Log2((ulong)options.SlabSize);
        _pagesPerSlab = options.SlabSize >> PageShift;
        var slabs = (int)((size + options.SlabSize - 1) >> _slabShift);
        _map = new SlabMapping?[slabs];
        _placement = new int[slabs];
        _retries = new int[slabs];
        _writers = new SlabWriters(slabs);
        _onDisk = new PageBitmap((size + PageSize - 1) >> PageShift);
        _random = options.Seed is { } seed ? new Random(seed) : new Random();
        _fills = new SemaphoreSlim(options.ParallelFills);
        var clientId = options.ClientId != 0 ? options.ClientId : (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        _daemons = new DaemonEndpoint[daemons.Count];
        for (var i = 0; i < _daemons.Length; i++)
        {
            var endpoint = new DaemonEndpoint(daemons[i].Name, daemons[i].EndPoint, clientId, options.Links, _time, _logger);
            endpoint.Joined += OnJoined;
            endpoint.Lost += OnLost;
            _daemons[i] = endpoint;
        }
    }

    public long Size { get; }

    public BlockDeviceCapabilities Capabilities =>
        BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim |
        BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.MultiConn;

    public int MinimumBlockSize => 1;

    public long SlabSize => _options.SlabSize;

    public IReadOnlyList<DaemonEndpoint> Daemons => _daemons;

    /// <summary>Starts connecting to the daemons; the device serves from the disk until they answer.</summary>
    public void Start()
    {
        foreach (var daemon in _daemons)
        {
            daemon.Start();
        }
    }

    public bool TryRead(long offset, Span<byte> destination) => false;

    /// <summary>
    /// Every write without FUA is done here, on the caller's thread: the pages go to the daemon (sent, not awaited)
    /// and to the disk, and the write is acknowledged once the disk has them. That is all an acknowledged page needs
    /// to survive a daemon loss or a server crash; the daemon's answer only decides, later, whether reads may take
    /// the pages from it (see <see cref="Settle"/>). Until then they read from the disk.
    /// </summary>
    public bool TryWrite(long offset, ReadOnlySpan<byte> source, bool fua)
    {
        if (fua)
        {
            return false;
        }

        WriteNow(offset, source);
        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (!destination.IsEmpty)
        {
            var n = PieceLength(offset, destination.Length);
            await ReadPieceAsync(offset, destination[..n]).ConfigureAwait(false);
            offset += n;
            destination = destination[n..];
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        WriteNow(offset, source.Span);
        if (fua)
        {
            // The flush waits on the disk: off the caller's thread.
            await Task.Yield();
            DiskOp(DiskOperation.Flush, 0, 0);
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            DiskOp(DiskOperation.Flush, 0, 0);
            return ValueTask.CompletedTask;
        }
        catch (BlockDeviceException ex)
        {
            // Failures travel in the ValueTask, as from every other operation.
            return ValueTask.FromException(ex);
        }
    }

    /// <summary>Bytes from <paramref name="offset"/> to the end of its slab, at most <paramref name="length"/>.</summary>
    private int PieceLength(long offset, long length) =>
        (int)Math.Min(length, _options.SlabSize - (offset & (_options.SlabSize - 1)));

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadPieceAsync(long offset, Memory<byte> destination)
    {
        var slab = (int)(offset >> _slabShift);
        var mapping = Volatile.Read(ref _map[slab]);
        if (mapping is null || !mapping.Usable)
        {
            DiskRead(offset, destination.Span);
            return;
        }

        // Page by page within the slab: runs valid on the daemon are read from it, the rest from the disk.
        var slabBase = (long)slab << _slabShift;
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
            if (valid && await TryRemoteReadAsync(slab, mapping, position - slabBase, run).ConfigureAwait(false))
            {
                awaitedRemote = true;
            }
            else
            {
                if (awaitedRemote || valid)
                {
                    // Resumed on the daemon link's receive thread: the disk read belongs elsewhere.
                    await Task.Yield();
                }

                DiskRead(position, run.Span);
            }

            position = runEnd;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> TryRemoteReadAsync(int slab, SlabMapping mapping, long slabOffset, Memory<byte> destination)
    {
        try
        {
            var reply = await mapping.Link.ReadAsync(mapping.Grant, slabOffset, destination).ConfigureAwait(false);
            if (reply.Ok)
            {
                return true;
            }

            Unmap(slab, mapping, $"daemon answered {reply.Status} to a read");
        }
        catch (DaemonLinkException)
        {
            // The link is down; OnLost unmaps every slab on it.
        }

        return false;
    }

    /// <summary>Writes piece by piece (one a slab): each is on the disk and sent to its daemon when this returns.</summary>
    private void WriteNow(long offset, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            var n = PieceLength(offset, source.Length);
            var piece = BeginPiece(offset, source[..n]);
            if (piece.Sent)
            {
                TrackRemote(piece);
            }

            if (piece.DiskError is not null)
            {
                throw piece.DiskError;
            }

            if (piece.Mapping is null)
            {
                EnsurePlaced(piece.Slab);
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
        var slab = (int)(offset >> _slabShift);
        var slabBase = (long)slab << _slabShift;
        var coverStart = offset & ~(long)(PageSize - 1);
        var coverEnd = (offset + source.Length + PageSize - 1) & ~(long)(PageSize - 1);
        var piece = new PendingPiece
        {
            Slab = slab,
            FirstPage = (coverStart - slabBase) >> PageShift,
            Pages = (coverEnd - coverStart) >> PageShift,
            Mapping = Volatile.Read(ref _map[slab]),
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
#pragma warning disable CA2012 // consumed exactly once, by the RemoteWrite that TrackRemote hands it to
                    piece.Remote = mapping.Link.WriteAsync(mapping.Grant, offset - slabBase, source, defer: true);
#pragma warning restore CA2012
                    piece.Sent = true;
                    DiskWrite(offset, source);
                }
                else if (coverEnd - coverStart <= EdgeLimit)
                {
                    // Part pages: the daemon gets whole pages read back from the disk. Serialized, so two part-page
                    // writes to one page reach the daemon in the order their disk writes happened.
                    var length = (int)(coverEnd - coverStart);
                    piece.Edge = PinnedBufferPool.Shared.Rent(length);
                    lock (_edgeLock)
                    {
                        DiskWrite(offset, source);
                        DiskRead(coverStart, piece.Edge.AsSpan(0, length));
#pragma warning disable CA2012 // consumed exactly once, by the RemoteWrite that TrackRemote hands it to
                        piece.Remote = mapping.Link.WriteAsync(mapping.Grant, coverStart - slabBase, piece.Edge.AsSpan(0, length), defer: true);
#pragma warning restore CA2012
                        piece.Sent = true;
                    }
                }
                else
                {
                    DiskWrite(offset, source);
                }
            }
            else
            {
                DiskWrite(offset, source);
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
    /// The daemon's answer to a piece (null: the link failed): an OK makes the pages valid there unless the disk write
    /// failed or a fill write may have overtaken this one; anything else unmaps the slab.
    /// </summary>
    private void Settle(in PendingPiece piece, DaemonReply? reply)
    {
        try
        {
            var mapping = piece.Mapping!;
            if (reply is not { } answer)
            {
                // The page is on disk and not valid remotely; OnLost unmaps the slab.
            }
            else if (!answer.Ok)
            {
                Unmap(piece.Slab, mapping, $"daemon answered {answer.Status} to a write");
            }
            else if (piece.DiskError is null && Interlocked.Read(ref mapping.FillSequence) == piece.FillSequence)
            {
                mapping.Valid.Set(piece.FirstPage, piece.Pages);
            }
        }
        finally
        {
            if (piece.Edge is not null)
            {
                PinnedBufferPool.Shared.Return(piece.Edge);
            }
        }
    }

    /// <summary>A write piece between its synchronous start and the daemon's answer.</summary>
    private struct PendingPiece
    {
        public int Slab;
        public long FirstPage;
        public long Pages;
        public SlabMapping? Mapping;
        public ValueTask<DaemonReply> Remote;
        public bool Sent;
        public long FillSequence;
        public byte[]? Edge;
        public BlockDeviceException? DiskError;
    }
}
