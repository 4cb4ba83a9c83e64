using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>The kernel log (dmesg) from a point on: what the kernel said about our swap device during a test.</summary>
internal sealed class KernelLog
{
    private readonly string? _lastLine;

    private KernelLog(IReadOnlyList<string> lines) => _lastLine = lines.Count > 0 ? lines[^1] : null;

    /// <summary>Marks the current end of the kernel log; fails the test if dmesg cannot be read (the check would be blind).</summary>
    public static async Task<KernelLog> MarkAsync(CancellationToken ct) => new(await ReadAsync(ct));

    /// <summary>The lines logged since the mark (all of them if the ring buffer wrapped past it).</summary>
    public async Task<IReadOnlyList<string>> SinceMarkAsync(CancellationToken ct)
    {
        var lines = await ReadAsync(ct);
        // Lines carry a timestamp, so the last one seen at the mark is found again exactly.
        var at = _lastLine is null ? -1 : lines.LastIndexOf(_lastLine);
        return lines.Skip(at + 1).ToList();
    }

    private static async Task<List<string>> ReadAsync(CancellationToken ct)
    {
        var result = await ExternalTool.RunAsync("dmesg", "util-linux", [], TimeSpan.FromSeconds(30), ct);
        Assert.That(result.ExitCode, Is.Zero, "the kernel log must be readable (dmesg as root; kernel.dmesg_restrict)\n" + result);
        return [.. result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }
}
