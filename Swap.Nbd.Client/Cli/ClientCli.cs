using System.Net.Sockets;
using Swap.Nbd.Client.Netlink;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client.Cli;

/// <summary>The swapnbd-client command line: dispatches to a command and turns every failure into one line and an exit code.</summary>
public static class ClientCli
{
    public const int ExitOk = 0;
    public const int ExitRuntime = 1;
    public const int ExitUsage = 2;

    public const string Usage = """
        Usage: swapnbd-client COMMAND [OPTIONS]

        Commands:
          info URI [--list] [--json] [--no-structured]
              Show the export: name, size, transmission flags, block sizes, description.
              --list        list the server's exports (OPT_LIST) instead
          bench URI [OPTIONS]
              Load generator. Options (defaults in brackets):
              --rw MODE            randread | randwrite | read | write | randrw [randread]
              --bs SIZE            request size, e.g. 4k [4k]
              --qd N               requests in flight per connection [32]
              --connections N      connections (N > 1 needs CAN_MULTI_CONN) [1]
              --seconds S          run time [10]
              --size-limit SIZE    use only the first SIZE bytes of the export [whole export]
              --rwmix-read PCT     with randrw: percentage of reads [50]
              --no-structured      do not negotiate structured replies
              --json               print the result as JSON on stdout

          attach URI [--connections N] [--block-size 4096] [--timeout S] [--dead-timeout S] [--index N]
                     [--backend-id ID] [--persist] [--health-interval S]
              Handshake N connections and bind them to a kernel nbd device over netlink (needs root and the nbd
              module); prints the device, e.g. /dev/nbd0. The device survives the client's exit.
              --timeout S          kernel request timeout; a request older than this marks its connection dead
                                   and is requeued [none]
              --dead-timeout S     how long the kernel holds requests while every connection is dead [kernel: 0]
              --index N            use /dev/nbdN [first free]
              --backend-id ID      name the backend; RECONFIGURE must name the same one
              --persist            stay up: mlockall, oom_score_adj -1000, and on NBD_CMD_LINK_DEAD (or a failed
                                   health check) reconnect with back-off and hand the new socket over with
                                   NBD_CMD_RECONFIGURE before --dead-timeout runs out. SIGTERM ends the client and
                                   leaves the device attached.
              --health-interval S  persist: how often NBD_CMD_STATUS checks the device [5]
          detach DEV
              NBD_CMD_DISCONNECT: detach /dev/nbdN (also nbdN or N).
          status [DEV]
              NBD_CMD_STATUS: "/dev/nbdN connected|disconnected" for DEV or every device; exit 1 if DEV is not
              connected.

        URI: nbd://HOST[:PORT]/[EXPORT]  (default port 10809, IPv6 as [::1])
             nbd+unix:///[EXPORT]?socket=PATH

        Exit codes: 0 ok, 1 runtime error (connection, server error), 2 usage error.
        """;

    /// <summary>Runs one command; <paramref name="ct"/> (Ctrl+C) ends a benchmark early.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        try
        {
            if (args.Length == 0)
            {
                throw new CliUsageException("missing command (info, bench, attach, detach or status); see --help");
            }

            if (args.Any(a => a is "--help" or "-h" or "help"))
            {
                await stdout.WriteLineAsync(Usage).ConfigureAwait(false);
                return ExitOk;
            }

            return args[0] switch
            {
                "info" => await InfoCommand.RunAsync(args[1..], stdout, ct).ConfigureAwait(false),
                "bench" => await BenchCommand.RunAsync(args[1..], stdout, stderr, ct).ConfigureAwait(false),
                "attach" => await AttachCommand.RunAsync(args[1..], stdout, stderr, ct).ConfigureAwait(false),
                "detach" => await DetachCommand.RunAsync(args[1..], stdout).ConfigureAwait(false),
                "status" => await StatusCommand.RunAsync(args[1..], stdout).ConfigureAwait(false),
                _ => throw new CliUsageException($"unknown command '{args[0]}' (expected info, bench, attach, detach or status); see --help"),
            };
        }
        catch (Exception ex) when (ex is CliUsageException or NbdUriException)
        {
            return await ReportAsync(stderr, ex.Message, ExitUsage).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return await ReportAsync(stderr, "interrupted", ExitRuntime).ConfigureAwait(false);
        }
        catch (NbdProtocolException ex)
        {
            return await ReportAsync(stderr, $"server violated the NBD protocol: {ex.Message}", ExitRuntime).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NetlinkErrorException or NetlinkProtocolException)
        {
            return await ReportAsync(stderr, ex.Message, ExitRuntime).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or TimeoutException or NotSupportedException or UnauthorizedAccessException)
        {
            return await ReportAsync(stderr, ex.Message, ExitRuntime).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Still one line: a stack trace helps nobody running a command.
            return await ReportAsync(stderr, $"internal error: {ex.GetType().Name}: {ex.Message}", ExitRuntime).ConfigureAwait(false);
        }
    }

    private static async Task<int> ReportAsync(TextWriter stderr, string message, int code)
    {
        var line = message.ReplaceLineEndings(" ").Trim();
        await stderr.WriteLineAsync($"swapnbd-client: {line}").ConfigureAwait(false);
        return code;
    }
}
