using System.Globalization;
using System.Text;
using System.Text.Json;
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

    public const string Usage = """
        usage: swapnbd-server status [--status-file PATH] [--json] [--watch [SECONDS]]

          --status-file PATH  the file the server writes (its --status-file; default /run/swapnbd/status.json)
          --json              print the file's JSON as it is (for scripts)
          --watch [SECONDS]   redraw every SECONDS (default 1) until Ctrl-C
        """;

    /// <summary>Runs the command; 0, 1 when the file cannot be read, 2 for bad arguments.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken ct)
    {
        var path = DefaultPath;
        var json = false;
        TimeSpan? watch = null;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--status-file" when i + 1 < args.Count:
                    path = args[++i];
                    break;
                case "--json":
                    json = true;
                    break;
                case "--watch":
                    watch = TimeSpan.FromSeconds(1);
                    if (i + 1 < args.Count && double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
                    {
                        if (seconds <= 0)
                        {
                            await error.WriteLineAsync("swapnbd-server status: --watch SECONDS must be positive");
                            return 2;
                        }

                        watch = TimeSpan.FromSeconds(seconds);
                        i++;
                    }

                    break;
                case "-h" or "--help":
                    await output.WriteLineAsync(Usage);
                    return 0;
                default:
                    await error.WriteLineAsync($"swapnbd-server status: '{args[i]}' is not known\n{Usage}");
                    return 2;
            }
        }

        while (true)
        {
            string text;
            try
            {
                text = await File.ReadAllTextAsync(path, ct);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"swapnbd-server status: cannot read {path}: {ex.Message} (the server writes it with --status-file {path})");
                return 1;
            }

            string frame;
            try
            {
                frame = json ? text.TrimEnd() : Format(JsonSerializer.Deserialize(text, StatusJsonContext.Default.ServerStatus)!, DateTimeOffset.UtcNow);
            }
            catch (JsonException ex)
            {
                await error.WriteLineAsync($"swapnbd-server status: {path} is not a status file: {ex.Message}");
                return 1;
            }

            // In place: cursor home and clear, then the frame.
            await output.WriteLineAsync(watch is null ? frame : "\u001b[H\u001b[2J" + frame);
            await output.FlushAsync(ct);
            if (watch is not { } interval)
            {
                return 0;
            }

            try
            {
                await Task.Delay(interval, ct);
            }
            catch (OperationCanceledException)
            {
                return 0;
            }
        }
    }

    /// <summary>The table for <paramref name="status"/>, as seen at <paramref name="now"/>.</summary>
    public static string Format(ServerStatus status, DateTimeOffset now)
    {
        var text = new StringBuilder();
        var age = (now - status.Time).TotalSeconds;
        text.Append(CultureInfo.InvariantCulture,
            $"swapnbd-server pid {status.Pid}: {status.State}, export '{status.Export}' {ByteSize.FormatApproximate(status.Size)}, {status.Backend}, " +
            $"{status.Connections} connection{(status.Connections == 1 ? "" : "s")} (status {age:0} s old{(age > 5 && status.State == "serving" ? ": is the server still running?" : "")})\n");
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
        return text.ToString();
    }

    private static string Micros(long us) => us < 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{us} µs");
}
