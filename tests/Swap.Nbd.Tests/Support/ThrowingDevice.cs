using Swap.BlockDevices;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A memory device with a bug: requests touching <see cref="SyncBad"/> throw an <see cref="InvalidOperationException"/>
/// from the synchronous fast path (TryRead/TryWrite), requests touching <see cref="AsyncBad"/> decline the fast path
/// and throw from the asynchronous one after yielding. Anything else is served normally. No BlockDeviceException:
/// this is what a bug below the server looks like.
/// </summary>
public sealed class ThrowingDevice(long size) : IBlockDevice
{
    private readonly SparseMemoryDevice _inner = new(size);

    public static readonly (long Offset, long Length) SyncBad = (1L << 20, 64L << 10);

    public static readonly (long Offset, long Length) AsyncBad = (2L << 20, 64L << 10);

    public long Size => _inner.Size;
    public BlockDeviceCapabilities Capabilities => _inner.Capabilities;
    public int MinimumBlockSize => _inner.MinimumBlockSize;

    public bool TryRead(long offset, Span<byte> destination)
    {
        ThrowIfIn(SyncBad, offset, destination.Length);
        return !Touches(AsyncBad, offset, destination.Length) && _inner.TryRead(offset, destination);
    }

    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        await Task.Yield();
        ThrowIfIn(AsyncBad, offset, destination.Length);
        ThrowIfIn(SyncBad, offset, destination.Length);
        await _inner.ReadAsync(offset, destination, cancellationToken);
    }

    public bool TryWrite(long offset, ReadOnlySpan<byte> source, bool fua)
    {
        ThrowIfIn(SyncBad, offset, source.Length);
        return !Touches(AsyncBad, offset, source.Length) && _inner.TryWrite(offset, source, fua);
    }

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        await Task.Yield();
        ThrowIfIn(AsyncBad, offset, source.Length);
        ThrowIfIn(SyncBad, offset, source.Length);
        await _inner.WriteAsync(offset, source, fua, cancellationToken);
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public ValueTask TrimAsync(long offset, long length, bool fua, CancellationToken cancellationToken) =>
        Touches(AsyncBad, offset, length) || Touches(SyncBad, offset, length)
            ? ValueTask.FromException(new InvalidOperationException("a bug in the device's trim"))
            : _inner.TrimAsync(offset, length, fua, cancellationToken);

    public ValueTask WriteZeroesAsync(long offset, long length, bool noHole, bool fastOnly, bool fua, CancellationToken cancellationToken) =>
        _inner.WriteZeroesAsync(offset, length, noHole, fastOnly, fua, cancellationToken);

    public int GetAllocation(long offset, long length, Span<AllocationExtent> extents) => _inner.GetAllocation(offset, length, extents);

    public void Dispose() => _inner.Dispose();

    private static bool Touches((long Offset, long Length) range, long offset, long length) =>
        offset < range.Offset + range.Length && range.Offset < offset + length;

    private static void ThrowIfIn((long Offset, long Length) range, long offset, long length)
    {
        if (Touches(range, offset, length))
        {
            throw new InvalidOperationException($"a bug in the device at offset {offset}");
        }
    }
}
