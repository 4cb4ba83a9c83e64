using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>nbdcopy pushes a file into the export and pulls it back; the bytes must survive unchanged.</summary>
[Category(Tier.Interop)]
public sealed class NbdCopyTests
{
    private const long Size = 48L << 20;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [TestCase(1), TestCase(4)]
    [CancelAfter(60_000)]
    public async Task Round_trip_of_random_data_is_byte_identical(int connections, CancellationToken ct)
    {
        await using var server = TestServer.Start(size: Size);
        var source = Path.Combine(server.Directory, "source.bin");
        var back = Path.Combine(server.Directory, "back.bin");
        var data = new byte[Size];
        new Random(42 + connections).NextBytes(data);
        await File.WriteAllBytesAsync(source, data, ct);

        var peak = 0;
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                peak = Math.Max(peak, server.Server.ConnectionCount);
                await Task.Delay(5, CancellationToken.None);
            }
        }, CancellationToken.None);

        string[] common = ["--connections", connections.ToString(), "--flush"];
        var push = await ExternalTool.RunAsync("nbdcopy", "libnbd-bin", [.. common, source, server.TcpUri], Timeout, ct);
        Assert.That(push.ExitCode, Is.Zero, push.ToString());
        var pull = await ExternalTool.RunAsync("nbdcopy", "libnbd-bin", [.. common, server.UnixUri, back], Timeout, ct);
        Assert.That(pull.ExitCode, Is.Zero, pull.ToString());
        await watching.CancelAsync();
        await watcher;

        var copy = await File.ReadAllBytesAsync(back, ct);
        Assert.That(copy, Has.Length.EqualTo(Size));
        var firstDifference = copy.AsSpan().CommonPrefixLength(data);
        Assert.That(firstDifference, Is.EqualTo(data.Length), "first differing byte");
        if (connections > 1)
        {
            Assert.That(peak, Is.GreaterThanOrEqualTo(2), "nbdcopy opened several connections (the server advertises multi-conn)");
        }
    }
}
