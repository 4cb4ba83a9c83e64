using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Swap.Nbd.Tests.Support;
using Swap.Server.Portal;
using Swap.Slabs.Backup;
using Swap.Slabs.Mapping;

namespace Swap.Nbd.Tests.Placement;

/// <summary>
/// When the portal is read again, on a fake clock: at the records' TTL, never sooner than 1 s nor later than the
/// refresh cap; after a bad reading with back-off from 1 s; at once on Reload (SIGHUP); and a bad reading, repeated,
/// is logged once and changes nothing.
/// </summary>
[Category(Tier.Integration)]
public sealed class PortalWatcherTests
{
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    [Test]
    [CancelAfter(60_000)]
    public async Task DNS_is_asked_again_at_the_TTL_within_one_second_and_the_refresh_cap(CancellationToken ct)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        // Each reading's TTL decides when the next one comes.
        var source = new ScriptedSource(time, [Good(TimeSpan.Zero), Good(TimeSpan.FromSeconds(5)), Good(TimeSpan.FromSeconds(600)), Good(TimeSpan.FromSeconds(2))]);
        await using var rig = await Rig.StartAsync(source, time);

        await rig.AdvanceUntilAsync(() => source.Calls.Count >= 5, ct);
        var gaps = source.Calls.Zip(source.Calls.Skip(1), (a, b) => b - a).ToList();
        Assert.Multiple(() =>
        {
            // After the first reading's TTL (0: the 1 s floor), then 5 s, 30 s (600 capped), 2 s.
            Assert.That(gaps[0], Is.InRange(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1) + (3 * Step)), "TTL 0: the 1 s floor");
            Assert.That(gaps[1], Is.InRange(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5) + (3 * Step)), "TTL 5 s");
            Assert.That(gaps[2], Is.InRange(Refresh, Refresh + (3 * Step)), "TTL 600 s, capped by the refresh");
            Assert.That(gaps[3], Is.InRange(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2) + (3 * Step)), "TTL 2 s");
            Assert.That(rig.Device.Daemons.Select(d => d.Name), Is.EqualTo(new[] { "127.0.0.1:1" }), "applied once");
        });
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task A_bad_reading_keeps_the_last_good_list_is_logged_once_and_is_retried_with_back_off(CancellationToken ct)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var source = new ScriptedSource(time, [Good(TimeSpan.FromSeconds(1)), Bad("SERVFAIL"), Bad("SERVFAIL"), Bad("SERVFAIL"), Empty(), Good(TimeSpan.FromSeconds(10))]);
        await using var rig = await Rig.StartAsync(source, time);

        await rig.AdvanceUntilAsync(() => source.Calls.Count >= 7, ct);
        var gaps = source.Calls.Zip(source.Calls.Skip(1), (a, b) => b - a).ToList();
        var kept = rig.Log.Entries.Where(e => e.EventId.Id == EventIds.PortalKeptLastGood).Select(e => e.Message).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(gaps[1], Is.InRange(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1) + (3 * Step)), "1st failure: 1 s");
            Assert.That(gaps[2], Is.InRange(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2) + (3 * Step)), "2nd: 2 s");
            Assert.That(gaps[3], Is.InRange(TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(4) + (3 * Step)), "3rd: 4 s");
            Assert.That(gaps[4], Is.InRange(TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(8) + (3 * Step)), "4th (the empty answer): 8 s");
            Assert.That(gaps[5], Is.InRange(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10) + (3 * Step)), "good again: its TTL");
            Assert.That(kept, Has.Count.EqualTo(2), "the same SERVFAIL once, the empty answer once");
            Assert.That(kept[0], Does.Contain("SERVFAIL").And.Contain("keeping the last good list (1 daemons)"));
            Assert.That(kept[1], Does.Contain("lists no daemon"));
            Assert.That(rig.Device.Daemons.Select(d => d.Name), Is.EqualTo(new[] { "127.0.0.1:1" }), "the first good list stayed");
        });
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Reload_reads_the_portal_at_once(CancellationToken ct)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var source = new ScriptedSource(time, [Good(TimeSpan.FromSeconds(600)), Good(TimeSpan.FromSeconds(600), "127.0.0.1:2")]);
        await using var rig = await Rig.StartAsync(source, time, TimeSpan.FromSeconds(600));

        rig.Watcher.Reload();
        for (var i = 0; i < 200 && source.Calls.Count < 2; i++)
        {
            await Task.Delay(10, ct);
        }

        Assert.That(source.Calls, Has.Count.EqualTo(2), "read again without the clock moving");
        Assert.That(source.Calls[1], Is.EqualTo(source.Calls[0]));
        // The drain of 127.0.0.1:1 first waits (on the clock) for the newcomer's link, which never comes up here.
        await rig.AdvanceUntilAsync(() => rig.Device.Daemons.Select(d => d.Name).SequenceEqual(["127.0.0.1:2"]), ct);

        Assert.That(rig.Device.Daemons.Select(d => d.Name), Is.EqualTo(new[] { "127.0.0.1:2" }), "127.0.0.1:1 left (drained), 127.0.0.1:2 joined");
    }

    private static Func<PortalResolution> Good(TimeSpan ttl, string name = "127.0.0.1:1") =>
        () => new PortalResolution([(name, new IPEndPoint(IPAddress.Loopback, int.Parse(name.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture)))], ttl);

    private static Func<PortalResolution> Bad(string reason) => () => throw new PortalResolveException($"dns://x.test:1: A x.test answered {reason}");

    private static Func<PortalResolution> Empty() => () => new PortalResolution([], TimeSpan.FromSeconds(1));

    /// <summary>Answers the script in turn (the last answer again once it runs out) and records the fake time of each call.</summary>
    private sealed class ScriptedSource(TimeProvider time, IReadOnlyList<Func<PortalResolution>> script) : IPortalSource
    {
        private readonly List<TimeSpan> _calls = [];

        public string Name => "dns://x.test:1";

        public IReadOnlyList<TimeSpan> Calls
        {
            get
            {
                lock (_calls)
                {
                    return [.. _calls];
                }
            }
        }

        public Task<PortalResolution> ResolveAsync(CancellationToken cancellationToken)
        {
            int index;
            lock (_calls)
            {
                index = _calls.Count;
                _calls.Add(time.GetUtcNow() - new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
            }

            try
            {
                return Task.FromResult(script[Math.Min(index, script.Count - 1)]());
            }
            catch (PortalResolveException ex)
            {
                return Task.FromException<PortalResolution>(ex);
            }
        }
    }

    /// <summary>A swap device with no daemon yet (a backup file in a temp directory) and a watcher over the source, on the fake clock.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        private readonly string _directory;
        private readonly FakeTimeProvider _time;
        private readonly ILoggerFactory _loggerFactory;

        private Rig(string directory, FakeTimeProvider time, SwapDevice device, PortalWatcher watcher, RecordingLoggerProvider log, ILoggerFactory loggerFactory)
        {
            _directory = directory;
            _time = time;
            Device = device;
            Watcher = watcher;
            Log = log;
            _loggerFactory = loggerFactory;
        }

        public SwapDevice Device { get; }

        public PortalWatcher Watcher { get; }

        public RecordingLoggerProvider Log { get; }

        /// <summary>The first reading is made here, as the host makes it at start; the watcher takes over from it.</summary>
        public static async Task<Rig> StartAsync(IPortalSource source, FakeTimeProvider time, TimeSpan? refresh = null)
        {
            var directory = Directory.CreateTempSubdirectory("swapnbd-watcher-").FullName;
            var log = new RecordingLoggerProvider();
            var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log).SetMinimumLevel(LogLevel.Information));
            IReadOnlyList<(string Name, EndPoint EndPoint)> daemons = [];
            TimeSpan? ttl = null;
            string? problem = null;
            try
            {
                var first = await source.ResolveAsync(CancellationToken.None);
                (daemons, ttl) = (first.Daemons, first.Ttl);
            }
            catch (PortalResolveException ex)
            {
                problem = ex.Message;
            }

            var device = new SwapDevice(4 << 20, BackupDisk.Open(Path.Combine(directory, "backup.img"), 4 << 20), daemons,
                SlabCluster.FastOptions(1 << 20), time, loggerFactory);
            device.Start();
            var watcher = new PortalWatcher(source, device, daemons.Select(d => d.Name), refresh ?? Refresh, time,
                loggerFactory.CreateLogger("portal"), problem, ttl);
            watcher.Start();
            return new Rig(directory, time, device, watcher, log, loggerFactory);
        }

        /// <summary>Moves the fake clock in small steps, letting the watcher run between them, until <paramref name="done"/>.</summary>
        public async Task AdvanceUntilAsync(Func<bool> done, CancellationToken ct)
        {
            for (var i = 0; i < 2000 && !done(); i++)
            {
                await Task.Delay(5, ct);
                _time.Advance(Step);
            }

            Assert.That(done(), "the readings came within 200 s of the fake clock");
        }

        public async ValueTask DisposeAsync()
        {
            await Watcher.DisposeAsync();
            await Device.StopAsync();
            _loggerFactory.Dispose();
            Log.Dispose();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
