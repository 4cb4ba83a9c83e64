namespace Swap.BlockDevices;

/// <summary>One write of a batch (<see cref="IBlockDevice.TryWriteBatch"/>): its device offset and its data.</summary>
public readonly record struct BlockWrite(long Offset, ReadOnlyMemory<byte> Data);
