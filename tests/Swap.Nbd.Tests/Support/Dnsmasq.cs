using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A real DNS server for the portal tests: Debian's dnsmasq on 127.0.0.1 at a free port, answering only for the
/// records the test gives (<c>host-record=</c>, <c>srv-host=</c> lines) and NXDOMAIN for every other name under
/// <c>.test</c>. <see cref="SetRecordsAsync"/> rewrites its configuration and restarts it on the same port.
/// </summary>
internal sealed class Dnsmasq : IDisposable
{
    private readonly string _directory;
    private RunningExe? _process;

    private Dnsmasq(string directory, int port)
    {
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>IP:PORT, as --dns-server takes it.</summary>
    public string Server => $"127.0.0.1:{Port}";

    /// <summary>Skips the test (with the reason) when dnsmasq is not installed (scripts/setup.sh installs it).</summary>
    public static async Task<Dnsmasq> StartAsync(int ttl, IEnumerable<string> records, CancellationToken ct)
    {
        if (!File.Exists("/usr/sbin/dnsmasq"))
        {
            Assert.Ignore("dnsmasq is not installed (apt-get install dnsmasq-base; scripts/setup.sh does)");
        }

        var directory = Path.Combine(Path.GetTempPath(), "swapnbd-dns-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var dns = new Dnsmasq(directory, FreePort()) { Ttl = ttl };
        await dns.SetRecordsAsync(records, ct);
        return dns;
    }

    public int Ttl { get; init; }

    /// <summary>Answers with these records from now on (dnsmasq restarted on the same port; queries meanwhile fail).</summary>
    public async Task SetRecordsAsync(IEnumerable<string> records, CancellationToken ct)
    {
        var conf = Path.Combine(_directory, "dnsmasq.conf");
        await File.WriteAllLinesAsync(conf, [
            $"port={Port}", "listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts",
            "local=/test/", $"local-ttl={Ttl}", "user=root", "log-queries", "log-facility=-", .. records], ct);
        Stop();
        _process = RunningExe.StartProgram("/usr/sbin/dnsmasq", ["--keep-in-foreground", $"--conf-file={conf}", "--pid-file="]);
        // Ready when it answers: a query for a name it has no record of gets NXDOMAIN back.
        var started = Stopwatch.StartNew();
        while (!await AnswersAsync(ct))
        {
            if (_process.HasExited || started.Elapsed > TimeSpan.FromSeconds(10))
            {
                Assert.Fail($"dnsmasq did not start on {Server}:\n{_process.Log}");
            }

            await Task.Delay(20, ct);
        }
    }

    public string Log => _process?.Log ?? "";

    private async Task<bool> AnswersAsync(CancellationToken ct)
    {
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        // A query for "probe.test" A: id 1, recursion desired.
        byte[] query = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, (byte)'p', (byte)'r', (byte)'o', (byte)'b', (byte)'e', 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0, 0, 1, 0, 1];
        await udp.SendAsync(query, new IPEndPoint(IPAddress.Loopback, Port), ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(200);
        try
        {
            var reply = await udp.ReceiveAsync(timeout.Token);
            return reply.Buffer.Length >= 12 && reply.Buffer[0] == 0 && reply.Buffer[1] == 1;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void Stop()
    {
        _process?.Dispose();
        _process = null;
    }

    /// <summary>A port free for UDP and TCP on 127.0.0.1 (the TCP listener's, which the UDP socket then takes too).</summary>
    private static int FreePort()
    {
        for (var attempt = 0; ; attempt++)
        {
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
            try
            {
                using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException) when (attempt < 20)
            {
                // Taken for UDP: another.
            }
        }
    }

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
