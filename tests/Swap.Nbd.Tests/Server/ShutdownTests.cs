using System.Diagnostics;
using System.Globalization;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// Stopping the server: in-process while clients have requests in flight or are mid-handshake (nbd-notes 1.11:
/// ESHUTDOWN), and the swapnbd-server process on SIGTERM.
/// </summary>
[Category(Tier.Integration)]
public sealed class ShutdownTests
{
    [Test, CancelAfter(20_000)]
    public async Task Stop_answers_requests_in_flight_and_refuses_later_ones(CancellationToken ct)
    {
        var directory = Path.Combine(Path.GetTempPath(), "swapnbd-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        using var device = new GatedDevice(16L << 20);
        var options = new NbdServerOptions
        {
            Listen = "127.0.0.1:0",
            Socket = Path.Combine(directory, "nbd.sock"),
            ShutdownTimeout = TimeSpan.FromSeconds(5),
        };
        await using var server = new NbdServer(options, device);
        server.Start();
        try
        {
            await using var client = await RawNbdClient.ConnectUnixAsync(options.Socket, ct);
            await client.HandshakeAsync(ct);
            var pattern = new byte[4096];
            new Random(3).NextBytes(pattern);
            await client.WriteAsync(0, pattern, ct);

            const int inFlight = 4;
            for (var i = 0; i < inFlight; i++)
            {
                await client.SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)(100 + i), 0, 4096), ct);
            }

            while (device.Waiting < inFlight)
            {
                await Task.Delay(5, ct);
            }

            var stopwatch = Stopwatch.StartNew();
            var stop = server.StopAsync();
            await client.SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, 999, 0, 4096), ct);
            await Task.Delay(200, ct);
            Assert.That(stop.IsCompleted, Is.False, "stop waits for the requests in flight");
            device.Open();

            var answered = new HashSet<ulong>();
            var late = new List<RawReply>();
            try
            {
                while (answered.Count < inFlight || late.Count == 0)
                {
                    var reply = await client.ReadReplyAsync(ct, 4096);
                    if (reply.Cookie == 999)
                    {
                        late.Add(reply);
                        continue;
                    }

                    Assert.That(reply.Error, Is.EqualTo(NbdError.None), $"in-flight request {reply.Cookie}");
                    Assert.That(reply.Payload, Is.EqualTo(pattern));
                    answered.Add(reply.Cookie);
                }
            }
            catch (EndOfStreamException)
            {
                // The server closed after answering what it had; acceptable for the late request.
            }

            Assert.That(answered, Is.EquivalentTo(new ulong[] { 100, 101, 102, 103 }), "every request in flight got its reply");
            Assert.That(late.Select(r => r.Error), Is.Empty.Or.EqualTo(new[] { NbdError.Shutdown }), "a request after the stop gets ESHUTDOWN or a clean close");
            Assert.That(await client.ReadUntilClosedAsync(TimeSpan.FromSeconds(3), ct), Is.Empty, "then the server closes the connection");
            await stop.WaitAsync(TimeSpan.FromSeconds(4), ct);
            Assert.That(stopwatch.Elapsed, Is.LessThan(options.ShutdownTimeout), "stopped gracefully, not by the shutdown timeout");
            Assert.That(server.ConnectionCount, Is.Zero);
        }
        finally
        {
            device.Open();
            await server.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test, CancelAfter(20_000)]
    public async Task Stop_during_handshake_answers_options_with_ERR_SHUTDOWN_or_closes(CancellationToken ct)
    {
        await using var server = TestServer.Start();
        await using var client = await RawNbdClient.ConnectTcpAsync(server, ct);
        await client.StartOptionsAsync(ct);
        await using var idle = await RawNbdClient.OpenAsync(server, ct);

        var stop = server.Server.StopAsync();
        try
        {
            await client.SendOptionAsync(NbdOption.List, [], ct);
            var reply = await client.ReadOptionReplyAsync(ct);
            Assert.That(reply.Type, Is.EqualTo(NbdOptionReplyType.ErrShutdown));
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException)
        {
            // Closed by the stop before the option arrived: also fine.
        }

        await stop.WaitAsync(TimeSpan.FromSeconds(4), ct);
        Assert.That(await idle.ReadUntilClosedAsync(TimeSpan.FromSeconds(1), ct), Is.Empty, "an idle connection is closed by the stop");
    }

    [Test, CancelAfter(20_000)]
    public async Task Stop_closes_a_connection_stuck_mid_request_after_the_shutdown_timeout(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct, o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        await using var stuck = await scenario.OpenAsync(ct);
        var frame = new byte[NbdRequest.Size + 4096];
        new NbdRequest(NbdCommandFlags.None, NbdCommand.Write, 1, 0, 4096).Write(frame);
        await stuck.SendAsync(frame.AsMemory(0, NbdRequest.Size + 100), ct);
        await Task.Delay(100, ct);

        var stopwatch = Stopwatch.StartNew();
        await scenario.Server.Server.StopAsync().WaitAsync(TimeSpan.FromSeconds(5), ct);

        Assert.That(stopwatch.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(900)).And.LessThan(TimeSpan.FromSeconds(3)));
        Assert.That(await stuck.ReadUntilClosedAsync(TimeSpan.FromSeconds(1), ct), Is.Empty);
        Assert.That(scenario.Server.Server.ConnectionCount, Is.Zero);
        scenario.AssertNoUnexpectedFailure();
    }

    [Test, CancelAfter(60_000)]
    public async Task Sigterm_stops_the_server_process_with_exit_code_0(CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("swapnbd-sigterm");
        var socket = Path.Combine(dir.FullName, "nbd.sock");
        try
        {
            using var process = RunningExe.Start("swapnbd-server", ["--size", "64MiB", "--listen", "", "--socket", socket]);
            for (var i = 0; i < 100 && !File.Exists(socket); i++)
            {
                await Task.Delay(100, ct);
            }

            Assert.That(File.Exists(socket), Is.True, "server did not create its socket");
            await using (var connection = await NbdClientConnection.ConnectAsync($"nbd+unix:///?socket={socket}", ct: ct))
            {
                await connection.WriteAsync(0, new byte[4096], ct: ct);
                var (exit, _) = await Repo.RunAsync("kill", ["-TERM", process.Pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), ct);
                Assert.That(exit, Is.Zero);
                Assert.That(await process.WaitForExitAsync(TimeSpan.FromSeconds(20), ct), Is.Zero, process.Stderr);
            }

            Assert.That(File.Exists(socket), Is.False, "the socket file is removed on exit");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
