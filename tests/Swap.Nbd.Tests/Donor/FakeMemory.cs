using Swap.Donor;

namespace Swap.Nbd.Tests.Donor;

/// <summary>MemAvailable a test sets by hand.</summary>
internal sealed class FakeMemory : IMemoryAvailability
{
    private long _available = 64L << 30;

    public long Available
    {
        get => Interlocked.Read(ref _available);
        set => Interlocked.Exchange(ref _available, value);
    }

    public long GetAvailableBytes() => Available;
}
