using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Swap.Common.Hosting;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Donor;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Hosting;

/// <summary>
/// sd_notify as a Type=notify unit sees it, without systemd: the test binds the Unix datagram socket systemd would,
/// passes it as $NOTIFY_SOCKET to the real out/swapnbd-server and out/swapnbd-daemon, and reads what they send. READY=1
/// must mean "serving" (a handshake answered at once, no retry), STOPPING=1 must come on SIGTERM, and a process that
/// fails to start must never say READY.
/// </summary>
[Category(Tier.Integration)]
public sealed class SystemdNotifyTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Test, CancelAfter(60_000)]
    public async Task The_server_says_READY_when_its_export_answers_a_handshake_and_STOPPING_on_SIGTERM(CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("swapnbd-notify-");
        try
        {
            var export = Path.Combine(dir.FullName, "nbd.sock");
            using var notify = NotifySocket.Bind(Path.Combine(dir.FullName, "notify"));
            using var server = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--socket", export, "--lock-memory", "false"],
                environment: new Dictionary<string, string> { [SystemdNotifier.SocketVariable] = notify.Address });

            var ready = await notify.ReceiveAsync(Wait, ct);
            Assert.That(ready, Is.Not.Null, "READY=1 within 20 s\n" + server.Log);
            Assert.That(ready, Does.StartWith("READY=1\nSTATUS=serving export ").And.Contain(export));

            // No waiting and no retry: whoever systemd starts after READY=1 (swapnbd-swap.service) connects now.
            await using (var client = await RawNbdClient.ConnectUnixAsync(export, ct))
            {
                await client.HandshakeAsync(ct);
                Assert.That(client.ExportSize, Is.EqualTo(64UL << 20));
            }

            Assert.That(await notify.ReceiveAsync(TimeSpan.FromMilliseconds(200), ct), Is.Null, "one READY, nothing else while serving");
            await Kill("-TERM", server.Pid, ct);
            var stopping = await notify.ReceiveAsync(Wait, ct);
            Assert.That(stopping, Does.StartWith("STOPPING=1\nSTATUS="), server.Log);
            Assert.That(await server.WaitForExitAsync(Wait, ct), Is.Zero, server.Log);
            Assert.That(server.Log, Does.Contain("Told the service manager READY=1").And.Contain("Told the service manager STOPPING=1"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task The_daemon_says_READY_on_an_abstract_socket_once_it_listens_and_STOPPING_on_SIGTERM(CancellationToken ct)
    {
        // systemd's own NOTIFY_SOCKET is abstract on many systems ("@/org/freedesktop/systemd1/notify/...").
        using var notify = NotifySocket.Bind("@swapnbd-notify-test-" + Guid.NewGuid().ToString("N"));
        using var daemon = RunningExe.Start("swapnbd-daemon",
            ["--listen", "127.0.0.1:0", "--max-memory", "64MiB", "--headroom", "0", "--lock-memory", "false", "--auth-key-file", TestKeys.File],
            environment: new Dictionary<string, string> { [SystemdNotifier.SocketVariable] = notify.Address });

        var ready = await notify.ReceiveAsync(Wait, ct);
        Assert.That(ready, Is.Not.Null, "READY=1 within 20 s\n" + daemon.Log);
        Assert.That(ready, Does.Match(@"^READY=1\nSTATUS=lending up to 67108864 bytes on 127\.0\.0\.1:\d+$"));
        var port = int.Parse(ready!.Split(':')[^1], CultureInfo.InvariantCulture);

        // The daemon answers a HELLO right away.
        await using (var client = await DonorTestClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct))
        {
            Assert.That(await client.HelloAsync(7, ct), Is.EqualTo(DaemonStatus.Ok), daemon.Log);
        }

        await Kill("-TERM", daemon.Pid, ct);
        Assert.That(await notify.ReceiveAsync(Wait, ct), Does.StartWith("STOPPING=1\nSTATUS="), daemon.Log);
        Assert.That(await daemon.WaitForExitAsync(Wait, ct), Is.Zero, daemon.Log);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_server_that_cannot_start_never_says_READY(CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("swapnbd-notify-");
        try
        {
            using var notify = NotifySocket.Bind(Path.Combine(dir.FullName, "notify"));
            var environment = new Dictionary<string, string> { [SystemdNotifier.SocketVariable] = notify.Address };

            using var badConfig = RunningExe.Start("swapnbd-server", ["--size", "lots", "--socket", Path.Combine(dir.FullName, "a.sock")], environment: environment);
            Assert.That(await badConfig.WaitForExitAsync(Wait, ct), Is.EqualTo(2), badConfig.Log);

            // A TCP port someone else holds: the configuration is fine, the listener is not.
            using var taken = new TcpListener(IPAddress.Loopback, 0);
            taken.Start();
            var port = ((IPEndPoint)taken.LocalEndpoint).Port;
            using var cannotListen = RunningExe.Start("swapnbd-server",
                ["--size", "64MiB", "--lock-memory", "false", "--listen", $"127.0.0.1:{port}", "--socket", Path.Combine(dir.FullName, "b.sock")], environment: environment);
            Assert.That(await cannotListen.WaitForExitAsync(Wait, ct), Is.EqualTo(3), cannotListen.Log);

            // Both have exited: anything they sent is in the socket's queue already.
            Assert.That(await notify.ReceiveAsync(TimeSpan.Zero, ct), Is.Null, "no READY from a server that does not serve");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Test]
    public void Without_a_listener_the_notifier_warns_with_the_fix_and_without_NOTIFY_SOCKET_it_is_silent()
    {
        using var provider = new RecordingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(provider));
        var logger = factory.CreateLogger("test");
        var missing = Path.Combine(Path.GetTempPath(), "swapnbd-no-such-notify-" + Guid.NewGuid().ToString("N"));

        Assert.That(new SystemdNotifier(logger, missing).Ready("x"), Is.False);
        Assert.That(new SystemdNotifier(logger, "relative/path").Ready("x"), Is.False);
        Assert.That(new SystemdNotifier(logger, "").Enabled, Is.False, "an empty NOTIFY_SOCKET is no socket");
        var warnings = provider.Entries.Where(e => e.EventId.Id == 911).ToList();
        Assert.That(warnings, Has.Count.EqualTo(2));
        Assert.That(warnings[0].Message, Does.Contain($"NOTIFY_SOCKET={missing}").And.Contain("READY=1").And.Contain("TimeoutStartSec"));
        Assert.That(warnings[1].Message, Does.Contain("only a path or an @abstract"));
    }

    private static async Task Kill(string signal, int pid, CancellationToken ct)
    {
        var (exit, output) = await Repo.RunAsync("kill", [signal, pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), ct);
        Assert.That(exit, Is.Zero, output);
    }

    /// <summary>What systemd binds for a Type=notify service: a Unix datagram socket, by path or abstract ('@').</summary>
    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket;

        private NotifySocket(Socket socket, string address)
        {
            _socket = socket;
            Address = address;
        }

        /// <summary>The value for $NOTIFY_SOCKET.</summary>
        public string Address { get; }

        public static NotifySocket Bind(string address)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Bind(new UnixDomainSocketEndPoint(address[0] == '@' ? "\0" + address[1..] : address));
            return new NotifySocket(socket, address);
        }

        /// <summary>The next datagram as text, or null when none comes within <paramref name="timeout"/>.</summary>
        public async Task<string?> ReceiveAsync(TimeSpan timeout, CancellationToken ct)
        {
            var buffer = new byte[4096];
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            try
            {
                var length = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                return Encoding.UTF8.GetString(buffer, 0, length);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return null;
            }
        }

        public void Dispose() => _socket.Dispose();
    }
}
