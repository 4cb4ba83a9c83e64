using System.Globalization;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Swap.BlockDevices;
using Swap.Common.Hosting;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// The export is the kernel's alone by default (issue 13): a Unix socket, mode 0600, in a directory of mode 0700 that
/// belongs to the server's user; TCP only when asked for, with a warning. The server's real socket code, in a temp
/// base directory that everyone may enter, so the protection has to come from what the server creates.
/// </summary>
[Category(Tier.Integration)]
[SupportedOSPlatform("linux")]
public sealed class ExportSocketTests
{
    private const UnixFileMode Mode0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Mode0755 = Mode0700 | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
    private string _base = "";

    [SetUp]
    public void CreateBase()
    {
        _base = Directory.CreateTempSubdirectory("swapnbd-export-").FullName;
        File.SetUnixFileMode(_base, Mode0755);
    }

    [TearDown]
    public void DeleteBase() => Directory.Delete(_base, recursive: true);

    [Test, CancelAfter(20_000)]
    public async Task Socket_is_0600_in_a_0700_directory_the_server_creates(CancellationToken ct)
    {
        var socket = Path.Combine(_base, "swapnbd", "swapnbd.sock");
        await using (var server = Start(new NbdServerOptions { Socket = socket }))
        {
            var directory = Path.GetDirectoryName(socket)!;
            Assert.That(File.GetUnixFileMode(directory), Is.EqualTo(Mode0700));
            Assert.That(File.GetUnixFileMode(socket), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(PrivateDirectoryNative.Stat(socket, out var socketOwner, out _), Is.Zero);
            Assert.That(PrivateDirectoryNative.Stat(directory, out var directoryOwner, out _), Is.Zero);
            Assert.That((socketOwner, directoryOwner), Is.EqualTo((PrivateDirectoryNative.EffectiveUserId(), PrivateDirectoryNative.EffectiveUserId())));
            Assert.That(server.EndPoints, Has.Count.EqualTo(1), "no TCP endpoint unless asked for");

            await using var client = await RawNbdClient.ConnectUnixAsync(socket, ct);
            await client.HandshakeAsync(ct);
            await client.RoundTripAsync(ct);
        }

        Assert.That(File.Exists(socket), Is.False, "the socket goes with the server");
    }

    [Test, CancelAfter(20_000)]
    public async Task A_directory_of_ours_that_others_may_enter_is_set_to_0700_and_logged(CancellationToken ct)
    {
        var directory = Path.Combine(_base, "run");
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, Mode0755);
        var log = new RecordingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log));

        await using var server = Start(new NbdServerOptions { Socket = Path.Combine(directory, "nbd.sock") }, loggerFactory);

        Assert.That(File.GetUnixFileMode(directory), Is.EqualTo(Mode0700));
        Assert.That(log.Entries.Count(e => e.EventId.Id == EventIds.SocketDirectoryTightened), Is.EqualTo(1));
        await using var client = await RawNbdClient.ConnectUnixAsync(Path.Combine(directory, "nbd.sock"), ct);
        await client.HandshakeAsync(ct);
    }

    [TestCase("777")]
    [TestCase("775")]
    [TestCase("1777")]
    public void A_directory_others_can_write_in_is_refused_naming_the_key_and_left_as_it_was(string octal)
    {
        var directory = Path.Combine(_base, "shared");
        Directory.CreateDirectory(directory);
        var mode = (UnixFileMode)Convert.ToInt32(octal, 8);
        File.SetUnixFileMode(directory, mode);

        var ex = Assert.Throws<IOException>(() => Start(new NbdServerOptions { Socket = Path.Combine(directory, "nbd.sock") }));

        Assert.That(ex!.Message, Does.StartWith($"Socket: directory {directory} is mode"));
        Assert.That(ex.Message, Does.Contain($"chmod 700 {directory}"));
        Assert.That(File.GetUnixFileMode(directory), Is.EqualTo(mode), "nothing changed");
        Assert.That(Directory.EnumerateFileSystemEntries(directory), Is.Empty, "no socket created");
    }

    [Test, CancelAfter(20_000)]
    public async Task A_directory_owned_by_another_user_is_refused(CancellationToken ct)
    {
        if (PrivateDirectoryNative.EffectiveUserId() != 0)
        {
            Assert.Ignore("needs root to give a directory to another user");
        }

        var directory = Path.Combine(_base, "theirs");
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, Mode0700);
        var (exit, output) = await Repo.RunAsync("chown", ["65534:65534", directory], TimeSpan.FromSeconds(10), ct);
        Assert.That(exit, Is.Zero, output);

        var ex = Assert.Throws<IOException>(() => Start(new NbdServerOptions { Socket = Path.Combine(directory, "nbd.sock") }));

        Assert.That(ex!.Message, Does.StartWith($"Socket: directory {directory} belongs to uid 65534, not to this server's user (uid 0)"));
        Assert.That(Directory.EnumerateFileSystemEntries(directory), Is.Empty, "no socket created");
    }

    [Test]
    public void A_file_or_link_where_the_directory_should_be_is_refused()
    {
        var file = Path.Combine(_base, "file");
        File.WriteAllText(file, "");
        var link = Path.Combine(_base, "link");
        Directory.CreateSymbolicLink(link, Path.GetTempPath());

        foreach (var path in new[] { file, link })
        {
            var ex = Assert.Throws<IOException>(() => Start(new NbdServerOptions { Socket = Path.Combine(path, "nbd.sock") }));
            Assert.That(ex!.Message, Does.StartWith($"Socket: {path} is not a directory"));
        }
    }

    [Test, CancelAfter(20_000)]
    public async Task A_tcp_endpoint_logs_the_warning_and_the_socket_alone_does_not(CancellationToken ct)
    {
        var log = new RecordingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log));
        await using (Start(new NbdServerOptions { Socket = Path.Combine(_base, "a", "nbd.sock") }, loggerFactory))
        {
            Assert.That(log.Entries.Count(e => e.EventId.Id == EventIds.TcpExport), Is.Zero);
        }

        await using (var server = Start(new NbdServerOptions { Listen = "127.0.0.1:0,127.0.0.1:0", Socket = Path.Combine(_base, "b", "nbd.sock") }, loggerFactory))
        {
            var warnings = log.Entries.Where(e => e.EventId.Id == EventIds.TcpExport).ToList();
            Assert.That(warnings, Has.Count.EqualTo(2), "one per TCP endpoint");
            Assert.That(warnings.All(w => w.Level == LogLevel.Warning));
            Assert.That(warnings[0].Message, Does.Contain(server.EndPoints[0].ToString()).And.Contain("reads and writes"));
            await using var client = await RawNbdClient.ConnectTcpAsync(((System.Net.IPEndPoint)server.EndPoints[0]).Port, ct);
            await client.HandshakeAsync(ct);
        }
    }

    /// <summary>
    /// swapnbd-server as started by systemd, with nothing said about where to listen: the default socket
    /// ($RUNTIME_DIRECTORY/swapnbd.sock, here a temp dir instead of /run/swapnbd) and not one TCP socket. The same run
    /// with --listen shows that the check sees a TCP listener when there is one.
    /// </summary>
    [Test, CancelAfter(60_000)]
    public async Task Server_process_without_listen_serves_the_default_socket_and_no_tcp(CancellationToken ct)
    {
        var runtime = Path.Combine(_base, "run");
        var socket = Path.Combine(runtime, "swapnbd.sock");
        var environment = new Dictionary<string, string> { ["RUNTIME_DIRECTORY"] = runtime };
        using (var server = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--lock-memory", "false"], environment: environment))
        {
            await server.WaitForLineAsync(l => l.Contains($"Listening on {socket}", StringComparison.Ordinal), TimeSpan.FromSeconds(20), ct);
            await using (var client = await RawNbdClient.ConnectUnixAsync(socket, ct))
            {
                await client.HandshakeAsync(ct);
                await client.RoundTripAsync(ct);
            }

            Assert.That(File.GetUnixFileMode(runtime), Is.EqualTo(Mode0700));
            Assert.That(File.GetUnixFileMode(socket), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(TcpListeners(server.Pid), Is.Empty, server.Log);
            Assert.That(server.Log, Does.Not.Contain("Swap.Nbd.Server[18]"), "no TCP warning without TCP");
        }

        using (var server = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--lock-memory", "false", "--listen", "127.0.0.1:0"], environment: environment))
        {
            var port = await server.ListeningPortAsync(ct);
            Assert.That(TcpListeners(server.Pid), Is.EqualTo(new[] { port }), server.Log);
            Assert.That(server.Log, Does.Contain("Swap.Nbd.Server[18]"), "the TCP warning, by its event id");
            Assert.That(server.Log, Does.Not.Contain($"Listening on {socket}"), "--listen alone: TCP only");
        }
    }

    private static Served Start(NbdServerOptions options, ILoggerFactory? loggerFactory = null)
    {
        var device = new SparseMemoryDevice(1 << 20);
        var server = new NbdServer(options, device, loggerFactory);
        try
        {
            server.Start();
            return new Served(server, device);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>A started server and its device, stopped and freed together.</summary>
    private sealed class Served(NbdServer server, SparseMemoryDevice device) : IAsyncDisposable
    {
        public IReadOnlyList<System.Net.EndPoint> EndPoints => server.EndPoints;

        public async ValueTask DisposeAsync()
        {
            await server.DisposeAsync();
            device.Dispose();
        }
    }

    /// <summary>The local ports of the TCP sockets in LISTEN state that process <paramref name="pid"/> holds.</summary>
    private static List<int> TcpListeners(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
            {
                inodes.Add(target["socket:[".Length..^1]);
            }
        }

        var ports = new List<int>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields[3] == "0A" && inodes.Contains(fields[9]))
                {
                    ports.Add(int.Parse(fields[1][(fields[1].LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                }
            }
        }

        Assert.That(inodes, Is.Not.Empty, $"process {pid} holds sockets (the check sees them)");
        return ports;
    }
}
