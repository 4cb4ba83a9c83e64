using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Metrics;

/// <summary>
/// Traffic for the metrics tests: rounds of 128 KiB writes and read-backs over the first 16 MiB of a slab-mode
/// export until Prometheus sees reads answered by a daemon (the first writes place slabs in the background, later
/// reads find their pages valid on a daemon), or the timeout passes.
/// </summary>
internal static class MetricsWorkload
{
    public const int Chunk = 128 << 10;

    /// <summary>Runs the rounds; returns the bytes written (as many read back and compared) and the rounds.</summary>
    public static async Task<(long Written, int Rounds)> RunAsync(SwapSystem system, PrometheusServer prometheus, TimeSpan timeout, CancellationToken ct)
    {
        await using var client = await NbdClientConnection.ConnectAsync(system.Uri, ct: ct);
        var data = new byte[Chunk];
        var back = new byte[Chunk];
        var written = 0L;
        var rounds = 0;
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            for (var offset = 0L; offset < 16L << 20; offset += Chunk)
            {
                Random.Shared.NextBytes(data);
                await client.WriteAsync(offset, data, ct: ct);
                await client.ReadAsync(offset, back, ct);
                Assert.That(back, Is.EqualTo(data), $"read back at {offset}");
                written += Chunk;
            }

            rounds++;
            if (await prometheus.ScalarAsync("sum(swapnbd_slabs_read_size_bytes_total{source=\"daemon\"})", ct) is > 0 || DateTime.UtcNow > deadline)
            {
                return (written, rounds);
            }

            await Task.Delay(1000, ct);
        }
    }
}
