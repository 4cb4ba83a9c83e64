using System.Net.Sockets;
using NUnit.Framework;
using Swap.Donor;
using Swap.Daemon.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Donor;

[Category(Tier.Integration)]
public sealed class DonorHotPathTests
{
    [Test, CancelAfter(60_000)]
    public async Task Read_and_write_allocate_nothing_per_request(CancellationToken ct)
    {
        await using var donor = new TestDonor();
        SlabGrant slab;
        await using (var setup = await donor.HelloAsync(7, ct))
        {
            slab = await setup.AllocOkAsync(4 * TestDonor.Slab, ct);
        }

        // A second connection of the same client, driven with synchronous socket calls on preallocated buffers so the
        // test itself allocates nothing while it measures.
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect(donor.Daemon.EndPoints[0]);
        BlockingHandshake.Run(socket, 7, TestKeys.Cluster);
        var reply = new byte[DaemonFrameHeader.Size + 65536];

        const int Length = 16384;
        var write = new byte[DaemonFrameHeader.Size + SlabRange.Size + Length];
        DaemonFrameHeader.For(DaemonOpcode.Write, DaemonStatus.Ok, 2, SlabRange.Size + Length).Write(write);
        new SlabRange(slab.SlabId, slab.Epoch, 8192, Length).Write(write.AsSpan(DaemonFrameHeader.Size));
        var read = new byte[DaemonFrameHeader.Size + SlabRange.Size];
        DaemonFrameHeader.For(DaemonOpcode.Read, DaemonStatus.Ok, 3, SlabRange.Size).Write(read);
        new SlabRange(slab.SlabId, slab.Epoch, 8192, Length).Write(read.AsSpan(DaemonFrameHeader.Size));

        void Round(int count)
        {
            for (var i = 0; i < count; i++)
            {
                socket.Send(write);
                ReceiveExactly(socket, reply.AsSpan(0, DaemonFrameHeader.Size));
                socket.Send(read);
                ReceiveExactly(socket, reply.AsSpan(0, DaemonFrameHeader.Size + Length));
            }
        }

        Round(3000); // warm-up: tiering, first-touch of pages
        Assert.That(reply[7], Is.EqualTo((byte)DaemonStatus.Ok));
        const int Requests = 2000;
        var before = GC.GetTotalAllocatedBytes(precise: true);
        Round(Requests / 2);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        // One allocation per request would be at least 24 bytes each; this leaves room for unrelated background work.
        Assert.That(allocated, Is.LessThan(Requests * 8), $"{allocated} bytes allocated over {Requests} requests");
    }

    [Test]
    public void ProcMeminfo_reads_MemAvailable()
    {
        using var meminfo = new ProcMeminfo();
        var first = meminfo.GetAvailableBytes();
        Assert.That(first, Is.GreaterThan(0));
        Assert.That(meminfo.GetAvailableBytes(), Is.GreaterThan(0), "the file is read again from the start");
        Assert.That(ProcMeminfo.Parse("MemTotal:  100 kB\nMemFree:  5 kB\nMemAvailable:    12345 kB\n"u8), Is.EqualTo(12345L * 1024));
        Assert.Throws<InvalidDataException>(() => ProcMeminfo.Parse("MemTotal: 1 kB\n"u8));
    }

    private static void ReceiveExactly(Socket socket, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = socket.Receive(destination);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }

            destination = destination[n..];
        }
    }
}
