using System.Globalization;
using System.Text;
using Swap.Common.Status;
using Swap.Common.Units;

namespace Swap.Donor.Status;

/// <summary>
/// `swapnbd-daemon status [--status-file PATH] [--json] [--watch [SECONDS]]`: a running daemon's state from its status
/// file, as a table (memory lent and committed against the cap, MemAvailable against the headroom, a row per client
/// id, evictions, refused handshakes, requests by opcode) or as the file's JSON for scripts; --watch redraws it in place.
/// </summary>
public static class DonorStatusView
{
    public const string DefaultPath = "/run/swapnbd-daemon/status.json";

    /// <summary>The command, over <see cref="DonorStatus"/> and <see cref="Format"/>.</summary>
    public static readonly StatusCommand<DonorStatus> Command = new("swapnbd-daemon", DefaultPath, DonorStatusJsonContext.Default.DonorStatus, Format);

    /// <summary>The table for <paramref name="status"/>, as seen at <paramref name="now"/>.</summary>
    public static string Format(DonorStatus status, DateTimeOffset now)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"swapnbd-daemon pid {status.Pid}: {status.State} on {string.Join(", ", status.Listen)}, {status.Connections} connection{(status.Connections == 1 ? "" : "s")}" +
            $"{(status.Handshaking > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({status.Handshaking} before HELLO)") : "")} ({StatusFile.Age(status, now, "the daemon")})\n");
        text.Append(CultureInfo.InvariantCulture,
            $"  lent {ByteSize.FormatApproximate(status.BytesLent)} of at most {ByteSize.FormatApproximate(status.MaxMemory)} in {status.Slabs} slab{(status.Slabs == 1 ? "" : "s")}, " +
            $"{ByteSize.FormatApproximate(status.BytesCommitted)} of it committed\n");
        text.Append(CultureInfo.InvariantCulture,
            $"  MemAvailable {ByteSize.FormatApproximate(status.MemAvailable)} (smoothed {ByteSize.FormatApproximate(status.MemAvailableSmoothed)}), " +
            $"headroom {ByteSize.FormatApproximate(status.Headroom)}{(status.MemAvailableSmoothed < status.Headroom && status.State == DonorStatus.Running ? ": evicting" : "")}\n");
        text.Append(CultureInfo.InvariantCulture, $"  {"client",-18} {"slabs",6} {"lent",12} {"committed",12} {"connections",12}\n");
        foreach (var client in status.Clients)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"  {client.Client,-18} {client.Slabs,6} {ByteSize.FormatApproximate(client.BytesLent),12} {ByteSize.FormatApproximate(client.BytesCommitted),12} " +
                $"{client.Connections,12}{(client.InGracePeriod ? " (grace period)" : "")}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"  evictions {status.Evictions}, handshakes refused {status.HandshakesRefused}");
        if (status.Requests.Count > 0)
        {
            text.Append("\n  requests: ").AppendJoin(", ", status.Requests.Select(r =>
                string.Create(CultureInfo.InvariantCulture, $"{r.Opcode} {r.Requests}{(r.Bytes > 0 ? $" ({ByteSize.FormatApproximate(r.Bytes)})" : "")}")));
        }

        return text.ToString();
    }
}
