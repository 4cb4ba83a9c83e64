using System.Globalization;
using Swap.Common.Units;

namespace Swap.Nbd.Client.Cli;

/// <summary>Everything a benchmark run needs, parsed and validated from the command line.</summary>
internal sealed record BenchSettings(
    NbdUri Uri,
    BenchMode Mode,
    int BlockSize,
    int QueueDepth,
    int Connections,
    TimeSpan Duration,
    long? SizeLimit,
    int ReadPercent,
    bool Json,
    bool StructuredReplies)
{
    public static BenchSettings Parse(string[] args)
    {
        var line = new CommandLine("bench", args,
            ["rw", "bs", "qd", "connections", "seconds", "size-limit", "rwmix-read"], ["json", "no-structured"]);
        if (line.Positionals.Count != 1)
        {
            throw new CliUsageException(line.Positionals.Count == 0 ? "bench: missing URI" : "bench: expected exactly one URI");
        }

        var uri = NbdUri.Parse(line.Positionals[0]);
        var mode = (line.Get("rw") ?? "randread") switch
        {
            "randread" => BenchMode.RandRead,
            "randwrite" => BenchMode.RandWrite,
            "read" => BenchMode.Read,
            "write" => BenchMode.Write,
            "randrw" => BenchMode.RandRw,
            var other => throw new CliUsageException($"bench: --rw '{other}' is not randread, randwrite, read, write or randrw"),
        };

        var bs = Size(line, "bs", 4096);
        if (bs is < 1 or > 32L << 20)
        {
            throw new CliUsageException("bench: --bs must be between 1 byte and 32MiB");
        }

        var qd = Integer(line, "qd", 32, 1, 4096);
        var connections = Integer(line, "connections", 1, 1, 64);
        var seconds = line.Get("seconds") ?? "10";
        if (!double.TryParse(seconds, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var s) || s <= 0 || s > 86400)
        {
            throw new CliUsageException($"bench: --seconds '{seconds}' must be a positive number of seconds");
        }

        long? limit = line.Has("size-limit") ? Size(line, "size-limit", 0) : null;
        if (limit is <= 0)
        {
            throw new CliUsageException("bench: --size-limit must be positive");
        }

        var readPercent = Integer(line, "rwmix-read", 50, 0, 100);
        if (line.Has("rwmix-read") && mode != BenchMode.RandRw)
        {
            throw new CliUsageException("bench: --rwmix-read only applies to --rw randrw");
        }

        return new BenchSettings(uri, mode, (int)bs, qd, connections, TimeSpan.FromSeconds(s), limit, readPercent,
            line.Has("json"), !line.Has("no-structured"));
    }

    public string ModeName => Mode.ToString().ToLowerInvariant();

    public bool Writes => Mode is BenchMode.RandWrite or BenchMode.Write or BenchMode.RandRw && ReadPercent < 100;

    private static long Size(CommandLine line, string name, long fallback)
    {
        var text = line.Get(name);
        if (text is null)
        {
            return fallback;
        }

        return ByteSize.TryParse(text, out var bytes)
            ? bytes
            : throw new CliUsageException($"bench: --{name} '{text}' is not a size (e.g. 4k, 64MiB, 1G)");
    }

    private static int Integer(CommandLine line, string name, int fallback, int min, int max)
    {
        var text = line.Get(name);
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new CliUsageException($"bench: --{name} '{text}' must be a whole number from {min} to {max}");
    }
}
