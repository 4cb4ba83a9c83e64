namespace Swap.BlockDevices;

/// <summary>Why a block device operation failed; the NBD server maps these onto NBD error values.</summary>
public enum BlockDeviceError
{
    Io,
    NoSpace,
    NotSupported,
    ReadOnly,
    Invalid,
    Shutdown,
}

/// <summary>A block device operation failed; the NBD client gets an error reply, the connection goes on.</summary>
public sealed class BlockDeviceException : Exception
{
    public BlockDeviceException() : this(BlockDeviceError.Io, "I/O error") { }
    public BlockDeviceException(string message) : this(BlockDeviceError.Io, message) { }
    public BlockDeviceException(string message, Exception inner) : base(message, inner) => Error = BlockDeviceError.Io;

    public BlockDeviceException(BlockDeviceError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    public BlockDeviceError Error { get; }
}
