using Swap.Common.Configuration;

namespace Swap.Nbd.Server.Hosting;

/// <summary>Everything that configures the NBD side of one server (listeners, export, limits); the device it serves is
/// given separately. Built from configuration by the host or directly by tests.</summary>
public sealed class NbdServerOptions
{
    /// <summary>The largest READ or WRITE payload the server accepts.</summary>
    public const int MaxPayload = NbdLimits.MaxPayload;

    /// <summary>Directory of the Unix socket served when no TCP endpoint is asked for (<see cref="UseDefaultSocket"/>).</summary>
    public const string DefaultSocketDirectory = "/run/swapnbd";

    /// <summary>File name of that socket.</summary>
    public const string DefaultSocketName = "swapnbd.sock";

    /// <summary>
    /// TCP endpoints (HOST:PORT, comma separated); empty (the default) for none. Port 0 picks a free port. Whoever can
    /// connect to one reads and writes the whole device, so the server warns at start for each.
    /// </summary>
    public string Listen { get; set; } = "";

    /// <summary>
    /// Unix socket path; null for none. Its directory is made the server's alone (created 0700, or refused unless
    /// ours and writable by no one else) and the socket is 0600.
    /// </summary>
    public string? Socket { get; set; }

    /// <summary>Name of the export; the default name "" always reaches it too.</summary>
    public string ExportName { get; set; } = "swapnbd";

    public string Description { get; set; } = "SwapNbd export";

    /// <summary>Connections past their handshake at most; a connection accepted while all are taken is closed at once.</summary>
    public int MaxConnections { get; set; } = 64;

    /// <summary>
    /// Connections still in their handshake at most, apart from <see cref="MaxConnections"/>: a newcomer beyond it
    /// closes the oldest, so connections that never finish the handshake cannot keep a real client out.
    /// </summary>
    public int MaxHandshakes { get; set; } = 16;

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

        if (MaxHandshakes is < 1 or > 65536)
        {
            errors.Add("MaxHandshakes: must be between 1 and 65536");
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

    /// <summary>
    /// With neither a TCP endpoint nor a socket asked for, serves the Unix socket at the default path:
    /// <paramref name="runtimeDirectory"/>/swapnbd.sock (the first entry of systemd's $RUNTIME_DIRECTORY, when the
    /// executable gets one), else /run/swapnbd/swapnbd.sock.
    /// </summary>
    public void UseDefaultSocket(string? runtimeDirectory)
    {
        if (Socket is null && string.IsNullOrWhiteSpace(Listen))
        {
            Socket = DefaultSocketPath(runtimeDirectory);
        }
    }

    /// <summary>The default socket's path for a $RUNTIME_DIRECTORY value (null or empty: /run/swapnbd).</summary>
    public static string DefaultSocketPath(string? runtimeDirectory)
    {
        var first = runtimeDirectory?.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        return Path.Combine(string.IsNullOrEmpty(first) ? DefaultSocketDirectory : first, DefaultSocketName);
    }

    public IEnumerable<string> SplitListen() =>
        Listen.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
