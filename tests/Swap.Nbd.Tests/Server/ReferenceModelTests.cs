using NUnit.Framework;
using Swap.Nbd.Client;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// Random READ/WRITE/TRIM/WRITE_ZEROES/FLUSH/CACHE mixes, many in flight over several connections, checked
/// byte for byte against a model of what the export must contain.
/// </summary>
public sealed class ReferenceModelTests
{
    private const int Size = 32 << 20;
    private const int SlotSize = 64 << 10;
    private const int Slots = Size / SlotSize;

    [TestCase(false, 1, false)]
    [TestCase(true, 1, false)]
    [TestCase(false, 3, false)]
    [TestCase(true, 4, true)]
    [CancelAfter(120_000)]
    public async Task Random_mix_matches_the_model(bool structured, int connections, bool unix, CancellationToken ct)
    {
        await using var server = TestServer.Start(Size);
        var uri = NbdUri.Parse(unix ? server.UnixUri : server.TcpUri);
        await using var pool = await NbdClientPool.ConnectAsync(uri, connections, new NbdClientOptions { StructuredReplies = structured }, ct);

        var model = new byte[Size];
        // Bytes whose content the protocol defines; a TRIMmed range is undefined until written again.
        var known = new bool[Size];
        Array.Fill(known, true);
        var rng = new Random(1234 + connections);
        var mismatches = 0;
        var operations = 0;

        for (var batch = 0; batch < 40; batch++)
        {
            var slots = Enumerable.Range(0, Slots).OrderBy(_ => rng.Next()).Take(64).ToArray();
            var tasks = new List<Task>();
            var updates = new List<Action>();
            foreach (var slot in slots)
            {
                var length = rng.Next(1, SlotSize + 1);
                var offset = ((long)slot * SlotSize) + rng.Next(0, SlotSize - length + 1);
                var kind = rng.Next(100);
                operations++;
                if (kind < 40)
                {
                    var buffer = new byte[length];
                    var expected = model.AsSpan((int)offset, length).ToArray();
                    var mask = known.AsSpan((int)offset, length).ToArray();
                    tasks.Add(ReadAndCheckAsync(pool, offset, buffer, expected, mask, () => Interlocked.Increment(ref mismatches), ct));
                }
                else if (kind < 75)
                {
                    var data = new byte[length];
                    rng.NextBytes(data);
                    tasks.Add(pool.WriteAsync(offset, data, fua: rng.Next(4) == 0, ct).AsTask());
                    updates.Add(() =>
                    {
                        data.CopyTo(model.AsSpan((int)offset));
                        known.AsSpan((int)offset, length).Fill(true);
                    });
                }
                else if (kind < 85)
                {
                    tasks.Add(pool.TrimAsync(offset, (uint)length, ct: ct).AsTask());
                    updates.Add(() => known.AsSpan((int)offset, length).Clear());
                }
                else if (kind < 95)
                {
                    tasks.Add(pool.WriteZeroesAsync(offset, (uint)length, noHole: rng.Next(2) == 0, ct: ct).AsTask());
                    updates.Add(() =>
                    {
                        model.AsSpan((int)offset, length).Clear();
                        known.AsSpan((int)offset, length).Fill(true);
                    });
                }
                else if (kind < 98)
                {
                    tasks.Add(pool.FlushAsync(ct).AsTask());
                }
                else
                {
                    tasks.Add(pool.CacheAsync(offset, (uint)length, ct).AsTask());
                }
            }

            await Task.WhenAll(tasks);
            foreach (var update in updates)
            {
                update();
            }
        }

        // The whole export, read back in 1 MiB pieces.
        for (var offset = 0; offset < Size; offset += 1 << 20)
        {
            await ReadAndCheckAsync(pool, offset, new byte[1 << 20], model.AsSpan(offset, 1 << 20).ToArray(),
                known.AsSpan(offset, 1 << 20).ToArray(), () => Interlocked.Increment(ref mismatches), ct);
        }

        Assert.That(mismatches, Is.Zero);
        Assert.That(operations, Is.EqualTo(40 * 64));
        Assert.That(server.Server.AcceptedConnections, Is.EqualTo(connections));
    }

    private static async Task ReadAndCheckAsync(NbdClientPool pool, long offset, byte[] buffer, byte[] expected, bool[] known, Action mismatch, CancellationToken ct)
    {
        await pool.ReadAsync(offset, buffer, ct);
        for (var i = 0; i < buffer.Length; i++)
        {
            if (known[i] && buffer[i] != expected[i])
            {
                mismatch();
                return;
            }
        }
    }
}
