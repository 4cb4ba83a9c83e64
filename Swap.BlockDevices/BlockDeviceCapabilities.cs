namespace Swap.BlockDevices;

/// <summary>What a block device supports, mapped by the NBD server onto transmission flags.</summary>
[Flags]
public enum BlockDeviceCapabilities
{
    None = 0,
    ReadOnly = 1 << 0,
    Flush = 1 << 1,
    Fua = 1 << 2,
    Trim = 1 << 3,
    WriteZeroes = 1 << 4,
    FastZero = 1 << 5,
    Cache = 1 << 6,
    /// <summary>All connections see one cache, so FLUSH on one covers writes on all.</summary>
    MultiConn = 1 << 7,
}
