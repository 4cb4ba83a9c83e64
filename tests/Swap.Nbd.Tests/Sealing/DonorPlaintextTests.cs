using System.Globalization;
using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Sealing;

/// <summary>
/// What a donor holds never contains a page's plaintext: a recognisable pattern written through NBD is looked for in
/// every byte of the daemons' slab memory (in-process, through the daemon's own slab store) and in the whole readable
/// memory of real swapnbd-daemon processes (/proc/PID/mem). The same search on a server with SealPages off finds the
/// pattern, so the search can fail.
/// </summary>
[Category(Tier.Integration)]
public sealed class DonorPlaintextTests
{
    private const int Size = 8 << 20;

    /// <summary>32 bytes that appear nowhere but in the pages this test writes.</summary>
    private static readonly byte[] Marker = "SWAPNBD-SECRET-PLAINTEXT-MARKER!"u8.ToArray();

    [TestCase(true)]
    [TestCase(false)]
    [CancelAfter(120_000)]
    public async Task The_slab_memory_of_a_donor_holds_no_page_in_the_clear(bool sealPages, CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Size, sealPages: sealPages);
        await WritePatternAsync(cluster, ct);

        long found = 0, nonZero = 0;
        foreach (var daemon in cluster.Daemons)
        {
            var slabs = daemon.Daemon!.Slabs;
            for (var id = 1u; id < 1024; id++)
            {
                if (slabs.Find(id) is not { } slab || !slab.TryAcquire())
                {
                    continue;
                }

                try
                {
                    var bytes = new byte[slab.Size];
                    slab.Device.TryRead(0, bytes);
                    found += Occurrences(bytes);
                    nonZero += bytes.Length - bytes.AsSpan().Count((byte)0);
                }
                finally
                {
                    slab.Release();
                }
            }
        }

        if (sealPages)
        {
            Assert.That(found, Is.Zero, "no 32-byte piece of any page in the clear");
            Assert.That(nonZero, Is.GreaterThan(Size * 99L / 100), "the pages are there, sealed");
        }
        else
        {
            Assert.That(found, Is.GreaterThanOrEqualTo(Size / Marker.Length), "unsealed, every page is there in the clear: the search works");
        }
    }

    [TestCase(true)]
    [TestCase(false)]
    [CancelAfter(180_000)]
    public async Task The_memory_of_a_swapnbd_daemon_process_holds_no_page_in_the_clear(bool sealPages, CancellationToken ct)
    {
        await using var cluster = await SlabCluster.StartAsync(2, Size, processes: true, sealPages: sealPages);
        await WritePatternAsync(cluster, ct);

        long found = 0, scanned = 0;
        foreach (var daemon in cluster.Daemons)
        {
            var (occurrences, bytes) = ScanProcess(daemon.Pid!.Value);
            found += occurrences;
            scanned += bytes;
        }

        Assert.That(scanned, Is.GreaterThan((long)Size), "the scan read at least the pages' worth of memory");
        if (sealPages)
        {
            Assert.That(found, Is.Zero, "no 32-byte piece of any page anywhere in the daemons' memory");
        }
        else
        {
            Assert.That(found, Is.GreaterThanOrEqualTo(Size / Marker.Length), "unsealed, the pages are in the daemons' memory: the search works");
        }
    }

    /// <summary>Every page of the export is the marker repeated, written through NBD; returns once every page is valid on a daemon.</summary>
    private static async Task WritePatternAsync(SlabCluster cluster, CancellationToken ct)
    {
        var block = new byte[64 << 10];
        for (var i = 0; i < block.Length; i += Marker.Length)
        {
            Marker.CopyTo(block, i);
        }

        await using var pool = await NbdClientPool.ConnectAsync(cluster.Uri, 2, new NbdClientOptions(), ct);
        for (var offset = 0; offset < Size; offset += block.Length)
        {
            await pool.WriteAsync(offset, block, fua: false, ct);
        }

        await cluster.WaitForAsync(s => s.PagesRemote == Size / 4096, "every page on a daemon", ct);
        var back = new byte[block.Length];
        await pool.ReadAsync(0, back, ct);
        Assert.That(back, Is.EqualTo(block), "the server reads its pages back");
    }

    /// <summary>Occurrences of the marker in every readable private mapping of a process, and the bytes read.</summary>
    private static (long Occurrences, long Bytes) ScanProcess(int pid)
    {
        long found = 0, scanned = 0;
        using var memory = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        var buffer = new byte[1 << 20];
        foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
        {
            // "start-end perms offset dev inode [path]"
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            var range = fields[0].Split('-');
            var start = long.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var end = long.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            // Readable anonymous or private memory; the runtime's huge reservations (mostly never touched) are skipped.
            if (fields[1][0] != 'r' || end - start > (1L << 30) || (fields.Length > 5 && fields[5].StartsWith('[') && fields[5] != "[heap]"))
            {
                continue;
            }

            var carry = 0;
            for (var position = start; position < end;)
            {
                var n = (int)Math.Min(buffer.Length - carry, end - position);
                int read;
                try
                {
                    memory.Position = position;
                    read = memory.Read(buffer, carry, n);
                }
                catch (IOException)
                {
                    break; // a mapping that cannot be read (guard pages)
                }

                if (read <= 0)
                {
                    break;
                }

                var total = carry + read;
                found += Occurrences(buffer.AsSpan(0, total));
                scanned += read;
                // The last bytes go first into the next read, so a marker across two reads is found (never twice:
                // fewer bytes are kept than a marker has).
                carry = Math.Min(Marker.Length - 1, total);
                buffer.AsSpan(total - carry, carry).CopyTo(buffer);
                position += read;
            }
        }

        return (found, scanned);
    }

    private static long Occurrences(ReadOnlySpan<byte> bytes)
    {
        long count = 0;
        var index = bytes.IndexOf(Marker);
        while (index >= 0)
        {
            count++;
            bytes = bytes[(index + Marker.Length)..];
            index = bytes.IndexOf(Marker);
        }

        return count;
    }
}
