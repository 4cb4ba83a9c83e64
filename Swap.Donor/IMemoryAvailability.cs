namespace Swap.Donor;

/// <summary>How much memory the host can still hand out (Linux's MemAvailable), read by the donor's monitor.</summary>
public interface IMemoryAvailability
{
    /// <summary>Current MemAvailable in bytes.</summary>
    long GetAvailableBytes();
}
