using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Nbd.Tests.Faults;
using Swap.Nbd.Tests.Support;
using Swap.Donor;

namespace Swap.Nbd.Tests.Donor;

/// <summary>
/// An in-process donor daemon on a free loopback port with the run's cluster key, a fake clock, fake MemAvailable and a
/// fault layer; checks on dispose that nothing failed and nothing leaked.
/// </summary>
internal sealed class TestDonor : IAsyncDisposable
{
    public const long Slab = 1L << 20;

    private readonly ILoggerFactory _loggerFactory;

    public TestDonor(Action<DonorOptions>? configure = null)
    {
        Options = new DonorOptions
        {
            Listen = "127.0.0.1:0",
            AuthKeyFile = TestKeys.File,
            MaxMemory = 64 * Slab,
            Headroom = 16 * Slab,
            MemAvailableSmoothing = 1,
        };
        configure?.Invoke(Options);
        _loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(Log));
        Daemon = new DonorDaemon(Options, _loggerFactory, Time, Memory, Faults.Wrap);
        Daemon.Start();
    }

    public DonorOptions Options { get; }

    public FakeTimeProvider Time { get; } = new();

    public FakeMemory Memory { get; } = new();

    /// <summary>Fault injection over every connection's transport.</summary>
    public DonorFaultLayer Faults { get; } = new();

    public RecordingLoggerProvider Log { get; } = new();

    public DonorDaemon Daemon { get; }

    public Task<DonorTestClient> ConnectAsync(CancellationToken ct) => DonorTestClient.ConnectAsync(Daemon.EndPoints[0], ct);

    public async Task<DonorTestClient> HelloAsync(ulong clientId, CancellationToken ct)
    {
        var client = await ConnectAsync(ct);
        Assert.That(await client.HelloAsync(clientId, ct), Is.EqualTo(Swap.Daemon.Protocol.DaemonStatus.Ok));
        return client;
    }

    /// <summary>Polls until <paramref name="condition"/> holds (the daemon reacts to a closed socket on its own thread).</summary>
    public static async Task WaitForAsync(Func<bool> condition, CancellationToken ct)
    {
        while (!condition())
        {
            await Task.Delay(10, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Daemon.StopAsync();
        Assert.That(Daemon.SlabCount, Is.Zero, "every slab freed at stop");
        Assert.That(Daemon.ConnectionCount, Is.Zero, "every connection closed at stop");
        Assert.That(Log.Entries.Where(e => e.Level >= LogLevel.Error).Select(e => e.Message), Is.Empty, "no unexpected failure");
        _loggerFactory.Dispose();
    }
}
