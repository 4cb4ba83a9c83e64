using Swap.BlockDevices;
using Swap.Slabs.Backup;

namespace Swap.Nbd.Tests.Faults;

/// <summary>
/// A backup store that fails on demand, layered over a real <see cref="BackupDisk"/> the way nbdkit's error filter
/// wraps a plugin: a test switches a failure on and off at run time, and every disk-error path can be exercised.
/// </summary>
internal sealed class FaultyBackupStore(BackupDisk inner) : IBackupStore
{
    private volatile bool _failReads;
    private volatile bool _failWrites;
    private volatile bool _failFlush;
    private long _batchedWrites;
    private long _overlappedWrites;

    /// <summary>Writes that reached the disk in batches of two or more (<see cref="WriteMany"/>).</summary>
    public long BatchedWrites => Interlocked.Read(ref _batchedWrites);

    /// <summary>The real disk underneath.</summary>
    public BackupDisk Inner { get; } = inner;

    public string Path => Inner.Path;

    public long Size => Inner.Size;

    /// <summary>Every <see cref="Read"/> fails with an I/O error.</summary>
    public bool FailReads
    {
        get => _failReads;
        set => _failReads = value;
    }

    /// <summary>Every <see cref="Write"/> and <see cref="Discard"/> fails with an I/O error.</summary>
    public bool FailWrites
    {
        get => _failWrites;
        set => _failWrites = value;
    }

    /// <summary>Every <see cref="Flush"/> fails with an I/O error.</summary>
    public bool FailFlush
    {
        get => _failFlush;
        set => _failFlush = value;
    }

    public void Read(long offset, Span<byte> destination)
    {
        // A range outside the disk stays the caller bug the real disk reports, fault or not.
        if (_failReads && InRange(offset, destination.Length))
        {
            throw Failure("read", offset, destination.Length, "injected fault (FailReads)");
        }

        Inner.Read(offset, destination);
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        if (_failWrites && InRange(offset, source.Length))
        {
            throw Failure("write", offset, source.Length, "injected fault (FailWrites)");
        }

        Inner.Write(offset, source);
    }

    /// <summary>The real disk's batch (native AIO) when writes do not fail; with <see cref="FailWrites"/> every write of it fails.</summary>
    public void WriteMany(ReadOnlySpan<BlockWrite> writes, Span<BlockDeviceException?> errors)
    {
        if (writes.Length > 1)
        {
            Interlocked.Add(ref _batchedWrites, writes.Length);
        }

        if (!_failWrites)
        {
            Inner.WriteMany(writes, errors);
            return;
        }

        for (var i = 0; i < writes.Length; i++)
        {
            errors[i] = InRange(writes[i].Offset, writes[i].Data.Length)
                ? Failure("write", writes[i].Offset, writes[i].Data.Length, "injected fault (FailWrites)")
                : throw new ArgumentOutOfRangeException(nameof(writes));
        }
    }

    /// <summary>The real disk's overlapped write (native AIO) when writes do not fail; with <see cref="FailWrites"/> the work runs and the write fails.</summary>
    public void WriteWhile<TWork>(long offset, ReadOnlySpan<byte> source, ref TWork work)
        where TWork : IWhileWriting, allows ref struct
    {
        if (_failWrites && InRange(offset, source.Length))
        {
            work.Run();
            throw Failure("write", offset, source.Length, "injected fault (FailWrites)");
        }

        Interlocked.Increment(ref _overlappedWrites);
        Inner.WriteWhile(offset, source, ref work);
    }

    /// <summary>Writes that came with work to overlap (<see cref="WriteWhile"/>).</summary>
    public long OverlappedWrites => Interlocked.Read(ref _overlappedWrites);

    public void Flush()
    {
        if (_failFlush)
        {
            throw new BlockDeviceException(BlockDeviceError.Io, $"backup disk {Path}: flush failed: injected fault (FailFlush)");
        }

        Inner.Flush();
    }

    public void Discard(long offset, long length)
    {
        if (_failWrites && InRange(offset, length))
        {
            throw Failure("discard", offset, length, "injected fault (FailWrites)");
        }

        Inner.Discard(offset, length);
    }

    public void Dispose() => Inner.Dispose();

    private bool InRange(long offset, long length) => offset >= 0 && length >= 0 && offset <= Size - length;

    private BlockDeviceException Failure(string operation, long offset, long length, string reason) =>
        new(BlockDeviceError.Io, $"backup disk {Path}: {operation} of {length} bytes at offset {offset} failed: {reason}");
}
