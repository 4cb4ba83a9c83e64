using System.Diagnostics.Metrics;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Server;

/// <summary>
/// The NBD server's instruments (meter <see cref="MeterName"/>): requests and bytes by command, READ and WRITE
/// latency, requests in flight, connections. Disabled instruments cost one branch; an enabled one a counter or
/// histogram update with a tag of a static string: nothing allocated per request.
/// </summary>
public sealed class NbdMetrics : IDisposable
{
    public const string MeterName = "SwapNbd.Nbd";

    /// <summary>Latency buckets in seconds: 10 µs to 2.5 s, for swap-in reads that cost tens of µs to a TCP retransmission.</summary>
    public static readonly double[] LatencyBuckets =
        [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _bytes;
    private readonly UpDownCounter<long> _inFlight;
    private readonly Histogram<double> _readLatency;
    private readonly Histogram<double> _writeLatency;
    private readonly TimeProvider _time;

    /// <summary>Instruments no exporter asks for (a meter of another name): for a server state made without a host.</summary>
    internal static readonly NbdMetrics Unobserved = new(null, TimeProvider.System, MeterName + ".Unobserved");

    public NbdMetrics(Func<int>? connections, TimeProvider time, string meterName = MeterName)
    {
        _time = time;
        _meter = new Meter(meterName);
        _requests = _meter.CreateCounter<long>("swapnbd.nbd.requests", "{request}", "NBD requests received, by command");
        _bytes = _meter.CreateCounter<long>("swapnbd.nbd.request.size", "By", "bytes of READ, WRITE, TRIM and WRITE_ZEROES requests, by command");
        _inFlight = _meter.CreateUpDownCounter<long>("swapnbd.nbd.requests.in_flight", "{request}", "requests received and not answered yet");
        var advice = new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets };
        _readLatency = _meter.CreateHistogram("swapnbd.nbd.read.duration", "s", "READ requests from receipt to reply", advice: advice);
        _writeLatency = _meter.CreateHistogram("swapnbd.nbd.write.duration", "s", "WRITE requests from receipt to reply", advice: advice);
        if (connections is not null)
        {
            _meter.CreateObservableGauge("swapnbd.nbd.connections", connections, "{connection}", "client connections open");
        }
    }

    /// <summary>Counts a request that passed validation; returns its start for <see cref="Answered"/> (0 when no one listens).</summary>
    public long Received(NbdCommand command, uint length)
    {
        if (!_requests.Enabled)
        {
            return 0;
        }

        var tag = new KeyValuePair<string, object?>("command", Name(command));
        _requests.Add(1, tag);
        if (command is NbdCommand.Read or NbdCommand.Write or NbdCommand.Trim or NbdCommand.WriteZeroes)
        {
            _bytes.Add(length, tag);
        }

        _inFlight.Add(1);
        return _time.GetTimestamp();
    }

    /// <summary>A request received at <paramref name="started"/> (from <see cref="Received"/>) has been answered.</summary>
    public void Answered(NbdCommand command, long started)
    {
        if (started == 0)
        {
            return;
        }

        _inFlight.Add(-1);
        var histogram = command switch
        {
            NbdCommand.Read => _readLatency,
            NbdCommand.Write => _writeLatency,
            _ => null,
        };
        histogram?.Record(_time.GetElapsedTime(started).TotalSeconds);
    }

    private static string Name(NbdCommand command) => command switch
    {
        NbdCommand.Read => "read",
        NbdCommand.Write => "write",
        NbdCommand.Flush => "flush",
        NbdCommand.Trim => "trim",
        NbdCommand.WriteZeroes => "write_zeroes",
        NbdCommand.Cache => "cache",
        NbdCommand.BlockStatus => "block_status",
        NbdCommand.Disconnect => "disc",
        _ => "other",
    };

    public void Dispose() => _meter.Dispose();
}
