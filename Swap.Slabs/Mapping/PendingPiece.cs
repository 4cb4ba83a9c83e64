using Swap.BlockDevices;
using Swap.Slabs.Remote;

namespace Swap.Slabs.Mapping;

/// <summary>A write piece (one slab's part of a write) between its synchronous start and the daemon's answer.</summary>
internal struct PendingPiece
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
