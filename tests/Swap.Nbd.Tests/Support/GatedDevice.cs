using Swap.BlockDevices;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A memory device whose reads wait at a gate until the test opens it, so requests can be held "in flight"
/// at the server for as long as a test needs (e.g. across a shutdown).
/// </summary>
public sealed class GatedDevice(long size) : IBlockDevice
{
    private readonly SparseMemoryDevice _inner = new(size);
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _waiting;

    public long Size => _inner.Size;
    public BlockDeviceCapabilities Capabilities => _inner.Capabilities;
    public int MinimumBlockSize => _inner.MinimumBlockSize;

    /// <summary>Reads currently held at the gate.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    public void Open() => _gate.TrySetResult();

    public bool TryRead(long offset, Span<byte> destination) => false;

    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _gate.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        await _inner.ReadAsync(offset, destination, cancellationToken);
    }

    public bool TryWrite(long offset, ReadOnlySpan<byte> source, bool fua) => _inner.TryWrite(offset, source, fua);
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken) => _inner.WriteAsync(offset, source, fua, cancellationToken);
    public ValueTask FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);
    public ValueTask TrimAsync(long offset, long length, bool fua, CancellationToken cancellationToken) => _inner.TrimAsync(offset, length, fua, cancellationToken);
    public ValueTask WriteZeroesAsync(long offset, long length, bool noHole, bool fastOnly, bool fua, CancellationToken cancellationToken) =>
        _inner.WriteZeroesAsync(offset, length, noHole, fastOnly, fua, cancellationToken);
    public int GetAllocation(long offset, long length, Span<AllocationExtent> extents) => _inner.GetAllocation(offset, length, extents);

    public void Dispose() => _inner.Dispose();
}
