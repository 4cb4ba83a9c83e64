using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Swap.Common.Status;

/// <summary>
/// `PROGRAM status [--status-file PATH] [--json] [--watch [SECONDS]]`: a running process's state from the status file
/// it rewrites every second, as a table or as the file's JSON for scripts; --watch redraws it in place until Ctrl-C.
/// Exit codes: 0; 1 when the file cannot be read, is no status file, or is stale (the table or JSON is still printed);
/// 2 for bad arguments.
/// </summary>
/// <param name="program">The executable whose status this is (swapnbd-server, swapnbd-daemon).</param>
/// <param name="defaultPath">The file read without --status-file.</param>
/// <param name="format">The table for a status, as seen at a moment.</param>
public sealed class StatusCommand<T>(string program, string defaultPath, JsonTypeInfo<T> json, Func<T, DateTimeOffset, string> format)
    where T : class, IStatusSnapshot
{
    public const int ExitOk = 0;
    public const int ExitUnreadable = 1;
    public const int ExitUsage = 2;

    public string Usage => $"""
        usage: {program} status [--status-file PATH] [--json] [--watch [SECONDS]]

          --status-file PATH  the file {program} writes (its --status-file; default {defaultPath})
          --json              print the file's JSON as it is (for scripts)
          --watch [SECONDS]   redraw every SECONDS (default 1) until Ctrl-C

        Exit 1 when the file cannot be read or is older than {StatusFile.StaleAfter.TotalSeconds:0} s while it says {program} runs, 2 for a bad argument.
        """;

    /// <summary>Runs on the console: stdout, stderr, Ctrl-C ends --watch.</summary>
    public async Task<int> RunConsoleAsync(IReadOnlyList<string> args)
    {
        using var interrupted = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            interrupted.Cancel();
        };
        return await RunAsync(args, Console.Out, Console.Error, TimeProvider.System, interrupted.Token).ConfigureAwait(false);
    }

    /// <summary>Runs the command; see the class for the exit codes.</summary>
    public async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, TimeProvider time, CancellationToken ct)
    {
        var path = defaultPath;
        var raw = false;
        TimeSpan? watch = null;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--status-file" when i + 1 < args.Count:
                    path = args[++i];
                    break;
                case "--json":
                    raw = true;
                    break;
                case "--watch":
                    watch = StatusFile.Interval;
                    if (i + 1 < args.Count && double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
                    {
                        if (!(seconds > 0))
                        {
                            await error.WriteLineAsync($"{program} status: --watch SECONDS must be positive").ConfigureAwait(false);
                            return ExitUsage;
                        }

                        watch = TimeSpan.FromSeconds(seconds);
                        i++;
                    }

                    break;
                case "-h" or "--help":
                    await output.WriteLineAsync(Usage).ConfigureAwait(false);
                    return ExitOk;
                default:
                    await error.WriteLineAsync($"{program} status: '{args[i]}' is not known\n{Usage}").ConfigureAwait(false);
                    return ExitUsage;
            }
        }

        while (true)
        {
            string text;
            try
            {
                text = await File.ReadAllTextAsync(path, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (watch is not null && ct.IsCancellationRequested)
            {
                // Ctrl-C while reading the file ends --watch as it does between frames.
                return ExitOk;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"{program} status: cannot read {path}: {ex.Message} ({program} writes it with --status-file {path})").ConfigureAwait(false);
                return ExitUnreadable;
            }

            T? status;
            try
            {
                status = JsonSerializer.Deserialize(text, json);
            }
            catch (JsonException ex)
            {
                await error.WriteLineAsync($"{program} status: {path} is not a status file of {program}: {ex.Message}").ConfigureAwait(false);
                return ExitUnreadable;
            }

            if (status?.State is null)
            {
                await error.WriteLineAsync($"{program} status: {path} is not a status file of {program}: it has no \"state\"").ConfigureAwait(false);
                return ExitUnreadable;
            }

            var now = time.GetUtcNow();
            var frame = raw ? text.TrimEnd() : format(status, now);
            // In place: cursor home and clear, then the frame.
            await output.WriteLineAsync(watch is null ? frame : "\u001b[H\u001b[2J" + frame).ConfigureAwait(false);
            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            if (watch is not { } interval)
            {
                if (!StatusFile.IsStale(status, now))
                {
                    return ExitOk;
                }

                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"{program} status: {path} was last written {(now - status.Time).TotalSeconds:0} s ago yet says \"{status.State}\": " +
                    $"is {program} still running? (it rewrites the file every second with --status-file {path})")).ConfigureAwait(false);
                return ExitUnreadable;
            }

            try
            {
                await Task.Delay(interval, time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return ExitOk;
            }
        }
    }
}
