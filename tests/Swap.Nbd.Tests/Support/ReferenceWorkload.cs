using System.Diagnostics;
using Swap.Nbd.Client;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// Random READ/WRITE/TRIM/WRITE_ZEROES/FLUSH(/CACHE) batches, 64 requests in flight, checked byte for byte against a
/// model of what the export must contain. A TRIMmed range is undefined until written again, so it is not checked.
/// </summary>
public sealed class ReferenceWorkload(int size, int seed, bool cache = true)
{
    private const int SlotSize = 64 << 10;
    private readonly byte[] _model = new byte[size];
    private readonly bool[] _known = CreateKnown(size);
    private readonly Random _rng = new(seed);
    private int _mismatches;
    private long _longestTicks;

    public int Mismatches => _mismatches;

    /// <summary>The longest one request of <see cref="RunAsync"/> took, from its send to its answer (a stall the client saw).</summary>
    public TimeSpan LongestRequest => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _longestTicks));

    public int Operations { get; private set; }

    /// <summary>Runs <paramref name="batches"/> batches; <paramref name="between"/> runs after each (batch number given), e.g. to inject a fault.</summary>
    public async Task RunAsync(NbdClientPool pool, int batches, CancellationToken ct, Func<int, Task>? between = null)
    {
        var slots = size / SlotSize;
        for (var batch = 0; batch < batches; batch++)
        {
            var chosen = Enumerable.Range(0, slots).OrderBy(_ => _rng.Next()).Take(Math.Min(64, slots)).ToArray();
            var tasks = new List<Task>();
            var updates = new List<Action>();
            foreach (var slot in chosen)
            {
                var length = _rng.Next(1, SlotSize + 1);
                var offset = ((long)slot * SlotSize) + _rng.Next(0, SlotSize - length + 1);
                var kind = _rng.Next(100);
                Operations++;
                if (kind < 40)
                {
                    var expected = _model.AsSpan((int)offset, length).ToArray();
                    var mask = _known.AsSpan((int)offset, length).ToArray();
                    tasks.Add(TimedAsync(Stopwatch.GetTimestamp(), ReadAndCheckAsync(pool, offset, new byte[length], expected, mask, ct)));
                }
                else if (kind < 75)
                {
                    var data = new byte[length];
                    _rng.NextBytes(data);
                    tasks.Add(TimedAsync(Stopwatch.GetTimestamp(), pool.WriteAsync(offset, data, fua: _rng.Next(4) == 0, ct).AsTask()));
                    updates.Add(() =>
                    {
                        data.CopyTo(_model.AsSpan((int)offset));
                        _known.AsSpan((int)offset, length).Fill(true);
                    });
                }
                else if (kind < 85)
                {
                    tasks.Add(TimedAsync(Stopwatch.GetTimestamp(), pool.TrimAsync(offset, (uint)length, ct: ct).AsTask()));
                    updates.Add(() => _known.AsSpan((int)offset, length).Clear());
                }
                else if (kind < 95)
                {
                    tasks.Add(TimedAsync(Stopwatch.GetTimestamp(), pool.WriteZeroesAsync(offset, (uint)length, noHole: _rng.Next(2) == 0, ct: ct).AsTask()));
                    updates.Add(() =>
                    {
                        _model.AsSpan((int)offset, length).Clear();
                        _known.AsSpan((int)offset, length).Fill(true);
                    });
                }
                else if (kind < 98 || !cache)
                {
                    tasks.Add(TimedAsync(Stopwatch.GetTimestamp(), pool.FlushAsync(ct).AsTask()));
                }
                else
                {
                    tasks.Add(TimedAsync(Stopwatch.GetTimestamp(), pool.CacheAsync(offset, (uint)length, ct).AsTask()));
                }
            }

            await Task.WhenAll(tasks).WaitAsync(ct);
            foreach (var update in updates)
            {
                update();
            }

            if (between is not null)
            {
                await between(batch);
            }
        }
    }

    /// <summary>Writes every byte of the export with random data (64 KiB a write, 64 in flight) and records it in the model.</summary>
    public async Task FillAsync(NbdClientPool pool, CancellationToken ct)
    {
        _rng.NextBytes(_model);
        Array.Fill(_known, true);
        for (var offset = 0; offset < size; offset += 64 * SlotSize)
        {
            var tasks = new List<Task>();
            for (var slot = offset; slot < Math.Min(size, offset + (64 * SlotSize)); slot += SlotSize)
            {
                tasks.Add(pool.WriteAsync(slot, _model.AsMemory(slot, Math.Min(SlotSize, size - slot)), fua: false, ct).AsTask());
            }

            await Task.WhenAll(tasks).WaitAsync(ct);
        }
    }

    /// <summary>Reads the whole export back in 1 MiB pieces and compares it with the model.</summary>
    public async Task VerifyAllAsync(NbdClientPool pool, CancellationToken ct)
    {
        for (var offset = 0; offset < size; offset += 1 << 20)
        {
            await VerifyAsync(pool, offset, Math.Min(1 << 20, size - offset), ct);
        }
    }

    /// <summary>Reads one range back and compares it with the model.</summary>
    public Task VerifyAsync(NbdClientPool pool, int offset, int length, CancellationToken ct) =>
        ReadAndCheckAsync(pool, offset, new byte[length], _model.AsSpan(offset, length).ToArray(), _known.AsSpan(offset, length).ToArray(), ct);

    private async Task ReadAndCheckAsync(NbdClientPool pool, long offset, byte[] buffer, byte[] expected, bool[] known, CancellationToken ct)
    {
        await pool.ReadAsync(offset, buffer, ct).AsTask().WaitAsync(ct);
        for (var i = 0; i < buffer.Length; i++)
        {
            if (known[i] && buffer[i] != expected[i])
            {
                Interlocked.Increment(ref _mismatches);
                return;
            }
        }
    }

    /// <param name="start">Taken before the request was sent (arguments are evaluated left to right).</param>
    private async Task TimedAsync(long start, Task request)
    {
        await request;
        var ticks = Stopwatch.GetTimestamp() - start;
        for (var longest = Interlocked.Read(ref _longestTicks); ticks > longest; longest = Interlocked.Read(ref _longestTicks))
        {
            if (Interlocked.CompareExchange(ref _longestTicks, ticks, longest) == longest)
            {
                break;
            }
        }
    }

    private static bool[] CreateKnown(int size)
    {
        var known = new bool[size];
        Array.Fill(known, true);
        return known;
    }
}
