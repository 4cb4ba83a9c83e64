using Swap.Common.Configuration;

namespace Swap.Nbd.Server.Hosting;

/// <summary>Everything that configures the NBD side of one server (listeners, export, limits); the device it serves is
/// given separately. Built from configuration by the host or directly by tests.</summary>
public sealed class NbdServerOptions
{
    /// <summary>The largest READ or WRITE payload the server accepts.</summary>
    public const int MaxPayload = NbdLimits.MaxPayload;

    /// <summary>TCP endpoints (HOST:PORT, comma separated); empty for none. Port 0 picks a free port.</summary>
    public string Listen { get; set; } = "127.0.0.1:10809";

    /// <summary>Unix socket path; null for none.</summary>
    public string? Socket { get; set; }

    /// <summary>Name of the export; the default name "" always reaches it too.</summary>
    public string ExportName { get; set; } = "swapnbd";

    public string Description { get; set; } = "SwapNbd export";

    /// <summary>Connections beyond this are closed right after accept.</summary>
    public int MaxConnections { get; set; } = 64;

    /// <summary>A client that has not finished option haggling by then is disconnected.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Per connection: payload bytes of requests in progress before the server stops reading more.</summary>
    public long MaxInFlightBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>
    /// How long a connection's thread polls for the next request before it sleeps. A client waiting on its previous
    /// reply (queue depth 1, a swap-in) sends again within tens of microseconds, and a sleep plus cross-CPU wake-up
    /// costs more than that on a VM: measured 15-17k vs 29-32k IOPS at QD1 over loopback. 0 turns polling off.
    /// </summary>
    public int PollMicroseconds { get; set; } = 50;

    /// <summary>On SIGTERM: how long connections get to finish and disconnect before they are closed.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Bytes of request buffers all connections together may hold; 0 derives it from the GC heap limit
    /// (<see cref="NbdServer.BufferBudgetFor"/>). Not a setting: tests set it to see the budget work.
    /// </summary>
    internal long BufferBudget { get; set; }

    /// <summary>Every problem with these options, each starting with the key it concerns; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Listen) && string.IsNullOrWhiteSpace(Socket))
        {
            errors.Add("Listen/Socket: nothing to listen on; give --listen HOST:PORT and/or --socket PATH");
        }

        foreach (var endpoint in SplitListen())
        {
            if (!EndpointParser.TryParse(endpoint, out _))
            {
                errors.Add($"Listen: '{endpoint}' is not HOST:PORT (e.g. 127.0.0.1:10809 or [::1]:10809)");
            }
        }

        if (Socket is not null && (Socket.Length == 0 || Socket.Length > 100))
        {
            errors.Add("Socket: a Unix socket path must be 1 to 100 characters");
        }

        if (ExportName.Length > 256 || Description.Length > 256)
        {
            errors.Add("ExportName/Description: at most 256 characters");
        }

        if (MaxConnections is < 1 or > 65536)
        {
            errors.Add("MaxConnections: must be between 1 and 65536");
        }

        if (HandshakeTimeout <= TimeSpan.Zero)
        {
            errors.Add("HandshakeTimeout: must be positive (seconds)");
        }

        if (MaxInFlightBytes < MaxPayload)
        {
            errors.Add($"MaxInFlightBytes: must be at least {MaxPayload} (one maximum request)");
        }

        if (PollMicroseconds is < 0 or > 10_000)
        {
            errors.Add("PollMicroseconds: must be between 0 (off) and 10000");
        }

        if (ShutdownTimeout < TimeSpan.Zero)
        {
            errors.Add("ShutdownTimeout: must not be negative");
        }

        return errors;
    }

    public IEnumerable<string> SplitListen() =>
        Listen.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
