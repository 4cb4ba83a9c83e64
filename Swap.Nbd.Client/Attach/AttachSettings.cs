using System.Globalization;
using Swap.Nbd.Client.Cli;

namespace Swap.Nbd.Client.Attach;

/// <summary>What <c>swapnbd-client attach</c> was asked to do, parsed and checked from its command line.</summary>
internal sealed record AttachSettings
{
    public required NbdUri Uri { get; init; }

    public int Connections { get; init; } = 1;

    public uint BlockSize { get; init; } = 4096;

    /// <summary>Kernel request timeout (NBD_ATTR_TIMEOUT) in seconds; null leaves the kernel default (none).</summary>
    public ulong? TimeoutSeconds { get; init; }

    /// <summary>NBD_ATTR_DEAD_CONN_TIMEOUT: how long the kernel holds requests while every connection is dead.</summary>
    public ulong? DeadTimeoutSeconds { get; init; }

    public uint? Index { get; init; }

    public string? BackendId { get; init; }

    public bool Persist { get; init; }

    /// <summary>How often the persist loop asks the kernel whether the device is still connected.</summary>
    public TimeSpan HealthInterval { get; init; } = TimeSpan.FromSeconds(5);

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
