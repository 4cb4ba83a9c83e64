namespace Swap.Nbd.Client.Cli;

/// <summary>One slot of the queue depth: issues a request, waits for it, records its latency, repeats.</summary>
internal sealed class BenchWorker(NbdClientConnection connection, BenchSettings settings, BenchRegion region, ReadOnlyMemory<byte> pattern,
    TimeProvider time, int seed)
{
    private readonly byte[] _buffer = GC.AllocateArray<byte>(settings.BlockSize, pinned: true);
    private readonly Random _random = new(seed);
    private long _reads;
    private long _writes;
    private long _errors;

    public LatencyHistogram Latency { get; } = new();
    public long Reads => Volatile.Read(ref _reads);
    public long Writes => Volatile.Read(ref _writes);
    public long Errors => Volatile.Read(ref _errors);

    public async Task RunAsync(CancellationToken stop)
    {
        var ticksToNanos = 1e9 / time.TimestampFrequency;
        while (!stop.IsCancellationRequested)
        {
            var read = settings.Mode switch
            {
                BenchMode.RandRead or BenchMode.Read => true,
                BenchMode.RandRw => _random.Next(100) < settings.ReadPercent,
                _ => false,
            };
            var offset = settings.Mode is BenchMode.Read or BenchMode.Write
                ? region.NextSequential()
                : _random.NextInt64(region.Blocks) * settings.BlockSize;

            // The loop checks stop between requests; a request already started is allowed to finish so its latency counts.
            var start = time.GetTimestamp();
            try
            {
                if (read)
                {
                    await connection.ReadAsync(offset, _buffer, CancellationToken.None).ConfigureAwait(false);
                }
                else
                {
                    await connection.WriteAsync(offset, pattern, fua: false, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (NbdServerErrorException)
            {
                // The server said no to this request; the connection goes on, and so does the run.
                Interlocked.Increment(ref _errors);
                continue;
            }

            Latency.Record((long)((time.GetTimestamp() - start) * ticksToNanos));
            Interlocked.Increment(ref read ? ref _reads : ref _writes);
        }
    }
}
