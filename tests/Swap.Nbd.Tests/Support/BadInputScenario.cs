using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Swap.Nbd.Server.Hosting;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A server plus one healthy connection already in transmission, opened before a test misbehaves, so the test can
/// show that the bad input hurt nobody else: the healthy connection and a brand-new one both still round-trip data.
/// </summary>
public sealed class BadInputScenario : IAsyncDisposable
{
    private readonly ILoggerFactory _loggerFactory;

    private BadInputScenario(TestServer server, RecordingLoggerProvider log, ILoggerFactory loggerFactory, RawNbdClient healthy)
    {
        Server = server;
        Log = log;
        _loggerFactory = loggerFactory;
        Healthy = healthy;
    }

    public TestServer Server { get; }
    public RecordingLoggerProvider Log { get; }
    public RawNbdClient Healthy { get; }

    public static async Task<BadInputScenario> StartAsync(CancellationToken ct, Action<NbdServerOptions>? configure = null, long size = 64L << 20, TimeProvider? time = null)
    {
        var log = new RecordingLoggerProvider();
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(log));
        var server = TestServer.Start(size, configure, loggerFactory, time);
        var healthy = await RawNbdClient.OpenAsync(server, ct);
        await healthy.RoundTripAsync(ct);
        return new BadInputScenario(server, log, loggerFactory, healthy);
    }

    public Task<RawNbdClient> ConnectAsync(CancellationToken ct) => RawNbdClient.ConnectTcpAsync(Server, ct);

    public Task<RawNbdClient> OpenAsync(CancellationToken ct, bool structured = false, bool metaContext = false) =>
        RawNbdClient.OpenAsync(Server, ct, structured, metaContext);

    /// <summary>The already-open connection and a new one (TCP and Unix) still work; the server logged no unexpected failure.</summary>
    public async Task AssertServerHealthyAsync(CancellationToken ct)
    {
        await Healthy.RoundTripAsync(ct, offset: 4096 * 3);
        await using (var fresh = await OpenAsync(ct))
        {
            await fresh.RoundTripAsync(ct, offset: 4096 * 5);
        }

        await using (var unix = await RawNbdClient.ConnectUnixAsync(Server.SocketPath, ct))
        {
            await unix.HandshakeAsync(ct, structured: true);
            await unix.RoundTripAsync(ct, offset: 4096 * 9);
        }

        AssertNoUnexpectedFailure();
    }

    public void AssertNoUnexpectedFailure()
    {
        var unexpected = Log.Entries.Where(e => e.EventId.Id == EventIds.Unexpected || e.Level >= LogLevel.Critical).ToList();
        Assert.That(unexpected, Is.Empty, string.Join(Environment.NewLine, unexpected.Select(e => $"{e.Message}: {e.Exception}")));
    }

    /// <summary>Waits until the server has dropped every connection but the healthy one (nothing leaked or stuck).</summary>
    public async Task WaitForConnectionCountAsync(int expected, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Server.Server.ConnectionCount != expected)
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"server still has {Server.Server.ConnectionCount} connections after {timeout}, expected {expected}");
            }

            await Task.Delay(10, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Healthy.DisposeAsync();
        await Server.DisposeAsync();
        _loggerFactory.Dispose();
    }
}
