using System.Net.Sockets;
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
                throw new CliUsageException("missing command (info or bench); see --help");
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
                _ => throw new CliUsageException($"unknown command '{args[0]}' (expected info or bench); see --help"),
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
