using System.Diagnostics.Metrics;
using Swap.Daemon.Protocol;

namespace Swap.Donor;

/// <summary>
/// The donor daemon's instruments (meter <see cref="MeterName"/>): requests and bytes by opcode and refused
/// handshakes counted as they happen (a counter update with a static tag, nothing allocated); memory lent and
/// committed, MemAvailable, slabs per client, evictions and connections read from the daemon when a collector asks.
/// </summary>
public sealed class DonorMetrics : IDisposable
{
    public const string MeterName = "SwapNbd.Donor";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _requests;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _refused;

    internal DonorMetrics(DonorDaemon daemon, Func<long> evicted)
    {
        _requests = _meter.CreateCounter<long>("swapnbd.donor.requests", "{request}", "requests answered, by opcode");
        _bytes = _meter.CreateCounter<long>("swapnbd.donor.request.size", "By", "page bytes read and written, by opcode");
        _refused = _meter.CreateCounter<long>("swapnbd.donor.handshakes.refused", "{handshake}",
            "HELLO/AUTH refused (bad proof, another cluster, limits, requests before the handshake)");
        _meter.CreateObservableGauge("swapnbd.donor.memory.lent", () => daemon.BytesLent, "By", "bytes lent: every slab at its full size");
        _meter.CreateObservableGauge("swapnbd.donor.memory.committed", () => daemon.BytesCommitted, "By", "slab bytes actually committed (pages written, not trimmed)");
        _meter.CreateObservableGauge("swapnbd.donor.host.mem_available", () => daemon.SmoothedMemAvailable, "By",
            "the host's MemAvailable as the daemon sees it (smoothed), what eviction compares with the headroom");
        _meter.CreateObservableGauge("swapnbd.donor.slabs", () => daemon.Clients.SlabsPerClient()
            .Select(c => new Measurement<int>(c.Slabs, new KeyValuePair<string, object?>("client", c.Client))), "{slab}", "slabs lent, per client id");
        _meter.CreateObservableGauge("swapnbd.donor.clients", () => daemon.ClientCount, "{client}", "client ids known (connected or in their grace period)");
        _meter.CreateObservableCounter("swapnbd.donor.evictions", evicted, "{slab}", "slabs evicted because the host ran short of memory");
        _meter.CreateObservableGauge("swapnbd.donor.connections", () => daemon.ConnectionCount, "{connection}", "connections open (handshaking or not)");
        _meter.CreateObservableGauge("swapnbd.donor.connections.handshaking", () => daemon.HandshakingCount, "{connection}",
            "connections that have not finished HELLO/AUTH yet");
    }

    /// <summary>Requests by opcode and refused handshakes, counted whether or not a collector listens (the status file).</summary>
    internal DonorRequestCounts Counts { get; } = new();

    internal void Answered(DaemonOpcode opcode, long bytes)
    {
        Counts.Answered(opcode, bytes);
        if (!_requests.Enabled)
        {
            return;
        }

        var tag = new KeyValuePair<string, object?>("opcode", Name(opcode));
        _requests.Add(1, tag);
        if (bytes > 0)
        {
            _bytes.Add(bytes, tag);
        }
    }

    internal void Refused()
    {
        Counts.Refused();
        _refused.Add(1);
    }

    internal static string Name(DaemonOpcode opcode) => opcode switch
    {
        DaemonOpcode.Hello => "hello",
        DaemonOpcode.Auth => "auth",
        DaemonOpcode.QueryFree => "query_free",
        DaemonOpcode.AllocSlab => "alloc_slab",
        DaemonOpcode.Read => "read",
        DaemonOpcode.Write => "write",
        DaemonOpcode.Trim => "trim",
        DaemonOpcode.FreeSlab => "free_slab",
        DaemonOpcode.Stats => "stats",
        _ => "other",
    };

    public void Dispose() => _meter.Dispose();
}
