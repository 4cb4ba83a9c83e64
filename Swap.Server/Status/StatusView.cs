using System.Globalization;
using System.Text;
using Swap.Common.Status;
using Swap.Common.Units;

namespace Swap.Server.Status;

/// <summary>
/// `swapnbd-server status [--status-file PATH] [--json] [--watch [SECONDS]]`: a running server's state from its
/// status file, as a table (per daemon: address, state, slabs, memory, median read latency; the backup disk; the
/// share of reads the daemons served) or as the file's JSON for scripts; --watch redraws it in place.
/// </summary>
public static class StatusView
{
    public const string DefaultPath = "/run/swapnbd/status.json";

    /// <summary>The command, over <see cref="ServerStatus"/> and <see cref="Format"/>.</summary>
    public static readonly StatusCommand<ServerStatus> Command = new("swapnbd-server", DefaultPath, StatusJsonContext.Default.ServerStatus, Format);

    /// <summary>Runs the command on the system clock; 0, 1 when the file cannot be read or is stale, 2 for bad arguments.</summary>
    public static Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken ct) =>
        Command.RunAsync(args, output, error, TimeProvider.System, ct);

    /// <summary>The table for <paramref name="status"/>, as seen at <paramref name="now"/>.</summary>
    public static string Format(ServerStatus status, DateTimeOffset now)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"swapnbd-server pid {status.Pid}: {status.State}, export '{status.Export}' {ByteSize.FormatApproximate(status.Size)}, {status.Backend}, " +
            $"{status.Connections} connection{(status.Connections == 1 ? "" : "s")} ({StatusFile.Age(status, now, "the server")})\n");
        if (status.MemoryBytes is { } memory)
        {
            text.Append(CultureInfo.InvariantCulture, $"  in the server's memory: {ByteSize.FormatApproximate(memory)}\n");
        }

        if (status.Slabs is not { } slabs)
        {
            return text.ToString().TrimEnd();
        }

        text.Append(CultureInfo.InvariantCulture, $"  {"daemon",-24} {"state",-8} {"slabs",6} {"memory",12} {"read median",12} {"hedge bound",12} {"open failures",14}\n");
        foreach (var daemon in slabs.Daemons)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"  {daemon.Name,-24} {daemon.State,-8} {daemon.Slabs,6} {ByteSize.FormatApproximate(daemon.Bytes),12} " +
                $"{Micros(daemon.ReadMedianUs),12} {Micros(daemon.HedgeBoundUs),12} {daemon.OpenFailures,14}\n");
        }

        text.Append(CultureInfo.InvariantCulture,
            $"  backup disk {slabs.BackupDisk.Path}: {ByteSize.FormatApproximate(slabs.BackupDisk.Bytes)} (a copy of every page written), " +
            $"{ByteSize.FormatApproximate(slabs.BackupDisk.BytesOnlyHere)} only there\n");
        text.Append(CultureInfo.InvariantCulture,
            $"  {slabs.SlabsMapped} of {slabs.SlabsTotal} slabs of {ByteSize.FormatApproximate(slabs.SlabSize)} placed on daemons, " +
            $"{ByteSize.FormatApproximate(slabs.BytesRemote)} there; sealing {slabs.Sealing}\n");
        var reads = slabs.ReadBytesFromDaemons + slabs.ReadBytesFromDisk;
        text.Append(CultureInfo.InvariantCulture,
            $"  reads: {ByteSize.FormatApproximate(slabs.ReadBytesFromDaemons)} from daemons, {ByteSize.FormatApproximate(slabs.ReadBytesFromDisk)} from the backup disk" +
            $"{(reads > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({100.0 * slabs.ReadBytesFromDaemons / reads:0.#} % remote)") : "")}; " +
            $"hedged {slabs.HedgedReads} (disk won {slabs.HedgeWonByDisk}, daemon won {slabs.HedgeWonByDaemon})");
        if (slabs.PrefetchIssuedBytes > 0 || slabs.PrefetchMissBytes > 0)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"\n  prefetch: {ByteSize.FormatApproximate(slabs.PrefetchHitBytes)} of reads from its cache, {ByteSize.FormatApproximate(slabs.PrefetchMissBytes)} past it; " +
                $"{ByteSize.FormatApproximate(slabs.PrefetchIssuedBytes)} asked of donors ahead, {ByteSize.FormatApproximate(slabs.PrefetchWastedBytes)} never read");
            if (slabs.PrefetchIssuedBytes > 0)
            {
                text.Append(CultureInfo.InvariantCulture, $" (accuracy {100.0 * slabs.PrefetchHitBytes / slabs.PrefetchIssuedBytes:0.#} %)");
            }
        }

        return text.ToString();
    }

    private static string Micros(long us) => us < 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{us} µs");
}
