using System.Globalization;
using Swap.Nbd.Client.Attach;

namespace Swap.Nbd.Client.Cli;

/// <summary>Reads and checks the command line of <c>swapnbd-client attach</c> into <see cref="AttachSettings"/>.</summary>
internal static class AttachArguments
{
    public static AttachSettings Parse(string[] args)
    {
        var line = new CommandLine("attach", args,
            ["connections", "block-size", "timeout", "dead-timeout", "index", "backend-id", "health-interval"], ["persist"]);
        if (line.Positionals.Count != 1)
        {
            throw new CliUsageException(line.Positionals.Count == 0 ? "attach: missing URI" : "attach: expected exactly one URI");
        }

        var blockSize = line.Get("block-size") is { } bs ? Number("block-size", bs, 512, 65536) : 4096;
        if ((blockSize & (blockSize - 1)) != 0)
        {
            throw new CliUsageException($"attach: --block-size '{blockSize}' must be a power of two from 512 to the page size");
        }

        var backend = line.Get("backend-id");
        if (backend is { Length: 0 or > 255 })
        {
            throw new CliUsageException("attach: --backend-id must be 1 to 255 characters");
        }

        return new AttachSettings
        {
            Uri = NbdUri.Parse(line.Positionals[0]),
            Connections = line.Get("connections") is { } c ? (int)Number("connections", c, 1, 64) : 1,
            BlockSize = (uint)blockSize,
            TimeoutSeconds = line.Get("timeout") is { } t ? (ulong)Number("timeout", t, 1, 86400) : null,
            DeadTimeoutSeconds = line.Get("dead-timeout") is { } d ? (ulong)Number("dead-timeout", d, 1, 86400) : null,
            Index = line.Get("index") is { } i ? (uint)Number("index", i, 0, int.MaxValue) : null,
            BackendId = backend,
            Persist = line.Has("persist"),
            HealthInterval = line.Get("health-interval") is { } h ? TimeSpan.FromSeconds(Number("health-interval", h, 1, 3600)) : TimeSpan.FromSeconds(5),
        };
    }

    private static long Number(string name, string text, long minimum, long maximum) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum && value <= maximum
            ? value
            : throw new CliUsageException($"attach: --{name} '{text}' must be a whole number from {minimum} to {maximum}");
}
