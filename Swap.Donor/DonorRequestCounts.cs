using Swap.Daemon.Protocol;
using Swap.Donor.Status;

namespace Swap.Donor;

/// <summary>
/// Requests answered and their page bytes per opcode, and HELLO/AUTH refused, counted always (for the status file;
/// the meter counts only while a collector listens): an interlocked add per request, each opcode on a cache line of
/// its own so that READs and WRITEs on different cores do not share one.
/// </summary>
internal sealed class DonorRequestCounts
{
    private const int Stride = 8; // longs: 64 bytes
    private const int Slots = (int)DaemonOpcode.Auth + 1; // slot 0 for an opcode beyond

    // Slot n at (n + 1) * Stride: the first line is the array's header's neighbour.
    private readonly long[] _counts = new long[(Slots + 1) * Stride];
    private long _refused;

    public void Answered(DaemonOpcode opcode, long bytes)
    {
        var at = Offset(opcode);
        Interlocked.Increment(ref _counts[at]);
        if (bytes > 0)
        {
            Interlocked.Add(ref _counts[at + 1], bytes);
        }
    }

    public void Refused() => Interlocked.Increment(ref _refused);

    /// <summary>HELLO/AUTH refused so far.</summary>
    public long RefusedCount => Interlocked.Read(ref _refused);

    /// <summary>The opcodes answered at least once, with their counts.</summary>
    public List<DonorRequestStatus> Snapshot()
    {
        var list = new List<DonorRequestStatus>();
        for (var slot = 0; slot < Slots; slot++)
        {
            var at = (slot + 1) * Stride;
            var requests = Interlocked.Read(ref _counts[at]);
            if (requests > 0)
            {
                list.Add(new DonorRequestStatus(DonorMetrics.Name((DaemonOpcode)slot), requests, Interlocked.Read(ref _counts[at + 1])));
            }
        }

        return list;
    }

    private static int Offset(DaemonOpcode opcode) => ((ushort)opcode < Slots ? (ushort)opcode + 1 : 1) * Stride;
}
