using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// A device that throws something other than a BlockDeviceException (a bug below the server): every request is still
/// answered, with EIO, event 26 names the request, and the connection goes on serving the rest of the device.
/// </summary>
[Category(Tier.Integration)]
public sealed class UnexpectedDeviceFailureTests
{
    [Test, CancelAfter(20_000)]
    public async Task A_device_bug_answers_EIO_logs_the_request_and_the_connection_keeps_serving(CancellationToken ct)
    {
        var directory = Path.Combine(Path.GetTempPath(), "swapnbd-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var log = new RecordingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log));
        using var device = new ThrowingDevice(16L << 20);
        var options = new NbdServerOptions { Socket = Path.Combine(directory, "nbd.sock"), ShutdownTimeout = TimeSpan.FromSeconds(5) };
        await using var server = new NbdServer(options, device, loggerFactory);
        server.Start();
        try
        {
            await using var client = await RawNbdClient.ConnectUnixAsync(options.Socket, ct);
            await client.HandshakeAsync(ct);
            var pattern = new byte[4096];
            new Random(26).NextBytes(pattern);
            await client.WriteAsync(0, pattern, ct);

            var bad = new (NbdCommand Command, long Offset)[]
            {
                (NbdCommand.Read, ThrowingDevice.SyncBad.Offset),
                (NbdCommand.Write, ThrowingDevice.SyncBad.Offset),
                (NbdCommand.Read, ThrowingDevice.AsyncBad.Offset),
                (NbdCommand.Write, ThrowingDevice.AsyncBad.Offset),
                (NbdCommand.Trim, ThrowingDevice.AsyncBad.Offset),
            };
            ulong cookie = 100;
            foreach (var (command, offset) in bad)
            {
                var request = new NbdRequest(NbdCommandFlags.None, command, cookie, (ulong)offset, 4096);
                await client.SendRequestAsync(request, command == NbdCommand.Write ? pattern : ReadOnlyMemory<byte>.Empty, ct);
                var reply = await client.ReadReplyAsync(ct);
                Assert.That((reply.Cookie, reply.Error), Is.EqualTo((cookie, NbdError.Io)), $"{command} at {offset}");
                cookie++;
            }

            await client.SendRequestAsync(new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, 999, 0, 4096), ct);
            var good = await client.ReadReplyAsync(ct, 4096);
            Assert.That((good.Cookie, good.Error), Is.EqualTo((999UL, NbdError.None)), "the connection still serves");
            Assert.That(good.Payload, Is.EqualTo(pattern));

            var failed = log.Entries.Where(e => e.EventId.Id == EventIds.RequestFailed).ToList();
            Assert.That(failed, Has.Count.EqualTo(bad.Length), string.Join('\n', log.Entries.Select(e => e.Message)));
            Assert.That(failed.Select(e => e.Exception), Is.All.InstanceOf<InvalidOperationException>());
            Assert.That(failed.Select(e => e.Message), Has.Some.Contain(ThrowingDevice.AsyncBad.Offset.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        finally
        {
            await server.StopAsync();
            Directory.Delete(directory, recursive: true);
        }
    }
}
