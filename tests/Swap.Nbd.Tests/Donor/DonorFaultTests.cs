using System.Buffers.Binary;
using NUnit.Framework;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Faults;

namespace Swap.Nbd.Tests.Donor;

[Category(Tier.Integration)]
public sealed class DonorFaultTests
{
    private const ulong Slab = TestDonor.Slab;

    [Test, CancelAfter(20_000)]
    public async Task Stall_keeps_the_socket_open_and_answers_nothing_until_cleared(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.HelloAsync(7, ct);
        var sentBefore = donor.Faults.BytesSent;
        donor.Faults.Active = DonorFaults.Stall;
        var stats = client.StatsAsync(ct);
        // The daemon has received the request and the stall holds it: from here on nothing can answer it until cleared.
        await donor.Faults.WaitForHeldRequestAsync(ct);
        Assert.That(donor.Faults.BytesSent, Is.EqualTo(sentBefore), "no reply while stalled");
        Assert.That(stats.IsCompleted, Is.False, "no reply while stalled");
        Assert.That(donor.Daemon.ConnectionCount, Is.EqualTo(1));
        donor.Faults.Active = DonorFaults.None;
        Assert.That((await stats).SlabsMapped, Is.Zero);
    }

    [Test, CancelAfter(20_000)]
    public async Task Garbage_replaces_replies_with_random_bytes(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        await using var client = await donor.HelloAsync(7, ct);
        donor.Faults.Active = DonorFaults.Garbage;
        await client.SendAsync(DaemonOpcode.Stats, 42, Array.Empty<byte>(), ct);
        var expected = new byte[DaemonFrameHeader.Size];
        DaemonFrameHeader.For(DaemonOpcode.Stats, DaemonStatus.Ok, 42, DaemonStats.Size).Write(expected);
        var received = new byte[DaemonFrameHeader.Size + DaemonStats.Size];
        await using var stream = new System.Net.Sockets.NetworkStream(client.Socket, ownsSocket: false);
        await stream.ReadExactlyAsync(received, ct);
        Assert.That(received.AsSpan(0, DaemonFrameHeader.Size).SequenceEqual(expected), Is.False);
        donor.Faults.Active = DonorFaults.None;
    }

    [Test, CancelAfter(20_000)]
    public async Task DropConnections_closes_every_connection_and_the_daemon_goes_on(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.GracePeriod = TimeSpan.FromSeconds(30));
        await using var a = await donor.HelloAsync(1, ct);
        await using var b = await donor.HelloAsync(2, ct);
        var slab = await a.AllocOkAsync(Slab, ct);
        donor.Faults.Active = DonorFaults.DropConnections;
        Assert.That(await a.IsClosedByPeerAsync(ct), Is.True);
        Assert.That(await b.IsClosedByPeerAsync(ct), Is.True);
        await TestDonor.WaitForAsync(() => donor.Daemon.ConnectionCount == 0, ct);

        donor.Faults.Active = DonorFaults.None;
        await using var again = await donor.HelloAsync(1, ct);
        Assert.That((await again.ReadAsync(slab, 0, 4096, ct)).Status, Is.EqualTo(DaemonStatus.Ok), "slabs survive within the grace period");
    }

    [Test, CancelAfter(120_000)]
    public async Task Fuzz_one_connection_while_another_keeps_working(CancellationToken ct)
    {
        await using var donor = new TestDonor(o => o.MaxClients = 4096);
        await using var good = await donor.HelloAsync(1, ct);
        var slab = await good.AllocOkAsync(4 * Slab, ct);
        var model = new byte[4 * Slab];
        var random = new Random(12345);
        for (var round = 0; round < 300; round++)
        {
            await using (var bad = await donor.ConnectAsync(ct))
            {
                if (random.Next(2) == 0)
                {
                    // Half the time a server with the key: what follows reaches the dispatcher past the handshake.
                    Assert.That(await bad.HelloAsync((ulong)random.NextInt64(2, long.MaxValue), ct), Is.EqualTo(DaemonStatus.Ok));
                }

                var bytes = RandomInput(random);
                try
                {
                    await bad.SendRawAsync(bytes, ct);
                }
                catch (IOException)
                {
                    // The daemon may close on the first bad frame while the rest is still being sent.
                }
            }

            // The good connection: a random write, then a read checked against the model.
            var offset = random.Next(0, (int)(4 * Slab) - 65536);
            var length = random.Next(1, 65536);
            var data = DonorTestClient.Pattern(length, round);
            Assert.That(await good.WriteAsync(slab, (ulong)offset, data, ct), Is.EqualTo(DaemonStatus.Ok));
            data.CopyTo(model, offset);
            var check = random.Next(0, (int)(4 * Slab) - 131072);
            var read = await good.ReadAsync(slab, (ulong)check, 131072, ct);
            Assert.That(read.Status, Is.EqualTo(DaemonStatus.Ok));
            Assert.That(read.Data.AsSpan().ToArray(), Is.EqualTo(model.AsSpan(check, 131072).ToArray()), $"round {round}");
        }

        Assert.That((await good.StatsAsync(ct)).SlabsMapped, Is.GreaterThanOrEqualTo(1u));
    }

    /// <summary>Plausible frames with random fields, raw garbage, or a valid prefix cut short.</summary>
    private static byte[] RandomInput(Random random)
    {
        var output = new List<byte>();
        var frames = random.Next(1, 6);
        for (var i = 0; i < frames; i++)
        {
            switch (random.Next(5))
            {
                case 0:
                {
                    var garbage = new byte[random.Next(1, 200)];
                    random.NextBytes(garbage);
                    output.AddRange(garbage);
                    break;
                }

                case 1:
                {
                    // A valid HELLO (random client id and nonce): a stranger without the key gets no further than AUTH.
                    var frame = new byte[DaemonFrameHeader.Size + DaemonHello.Size];
                    var nonce = new byte[DaemonAuthProof.NonceSize];
                    random.NextBytes(nonce);
                    DaemonFrameHeader.For(DaemonOpcode.Hello, 0, (ulong)i, DaemonHello.Size).Write(frame);
                    new DaemonHello(DaemonFrameHeader.Version, (ulong)random.NextInt64()).Write(frame.AsSpan(DaemonFrameHeader.Size), nonce);
                    output.AddRange(frame);
                    break;
                }

                default:
                {
                    // A header with a random opcode and small length, random body; sometimes claims more than it sends.
                    var bodyLength = random.Next(0, 48);
                    var frame = new byte[DaemonFrameHeader.Size + bodyLength];
                    random.NextBytes(frame);
                    var claimed = random.Next(4) == 0 ? random.Next(0, 1 << 20) : bodyLength;
                    BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(12 + claimed));
                    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(4), (ushort)random.Next(0, 11));
                    if (bodyLength >= 8 && random.Next(2) == 0)
                    {
                        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(16), (uint)random.Next(0, 4)); // a plausible slab id
                    }

                    output.AddRange(frame);
                    break;
                }
            }
        }

        // Truncate sometimes.
        var count = random.Next(3) == 0 ? random.Next(0, output.Count + 1) : output.Count;
        return output.GetRange(0, count).ToArray();
    }
}
