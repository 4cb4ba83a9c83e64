using System.Globalization;
using System.Text;

namespace Swap.Nbd.Client.Cli;

/// <summary>The totals of a benchmark run and how they are printed (text for people, JSON for scripts).</summary>
internal sealed record BenchResult(BenchSettings Settings, TimeSpan Elapsed, long Reads, long Writes, long Errors, LatencyHistogram Latency)
{
    public long Ops => Reads + Writes;
    public double Iops => Ops / Elapsed.TotalSeconds;
    public double MegabytesPerSecond => Ops * (double)Settings.BlockSize / 1e6 / Elapsed.TotalSeconds;

    private static double Micros(long nanos) => nanos / 1000.0;

    public string ToText()
    {
        var inv = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        var st = Settings;
        s.AppendLine(inv, $"{st.Uri} {st.ModeName}{(st.Mode == BenchMode.RandRw ? $" (reads {st.ReadPercent}%)" : string.Empty)} bs={st.BlockSize} qd={st.QueueDepth} connections={st.Connections} time={Elapsed.TotalSeconds:0.00}s");
        s.AppendLine(inv, $"  ops:      {Ops} (reads {Reads}, writes {Writes})");
        s.AppendLine(inv, $"  IOPS:     {Iops:0}");
        s.AppendLine(inv, $"  MB/s:     {MegabytesPerSecond:0.0} ({MegabytesPerSecond * 1e6 / (1 << 20):0.0} MiB/s)");
        s.AppendLine(inv, $"  latency:  p50 {Micros(Latency.Percentile(50)):0.0} us, p99 {Micros(Latency.Percentile(99)):0.0} us, p99.9 {Micros(Latency.Percentile(99.9)):0.0} us, max {Micros(Latency.Max):0.0} us, mean {Latency.Mean / 1000:0.0} us");
        s.AppendLine(inv, $"  errors:   {Errors}");
        return s.ToString();
    }

    public string ToJson() => InfoCommand.Json(w =>
    {
        var st = Settings;
        w.WriteString("uri", st.Uri.ToString());
        w.WriteString("rw", st.ModeName);
        w.WriteNumber("bs", st.BlockSize);
        w.WriteNumber("qd", st.QueueDepth);
        w.WriteNumber("connections", st.Connections);
        if (st.Mode == BenchMode.RandRw)
        {
            w.WriteNumber("rwmix_read", st.ReadPercent);
        }

        w.WriteNumber("seconds", Math.Round(Elapsed.TotalSeconds, 3));
        w.WriteNumber("ops", Ops);
        w.WriteNumber("reads", Reads);
        w.WriteNumber("writes", Writes);
        w.WriteNumber("iops", Math.Round(Iops, 1));
        w.WriteNumber("mb_per_s", Math.Round(MegabytesPerSecond, 2));
        w.WriteStartObject("latency_us");
        w.WriteNumber("p50", Micros(Latency.Percentile(50)));
        w.WriteNumber("p99", Micros(Latency.Percentile(99)));
        w.WriteNumber("p99_9", Micros(Latency.Percentile(99.9)));
        w.WriteNumber("max", Micros(Latency.Max));
        w.WriteNumber("mean", Math.Round(Latency.Mean / 1000, 1));
        w.WriteEndObject();
        w.WriteNumber("errors", Errors);
    });
}
