using System.Globalization;

namespace Swap.Nbd.Client.Cli;

/// <summary><c>swapnbd-client bench URI ...</c>: keeps qd requests in flight per connection for a while and reports IOPS, throughput and latency.</summary>
internal static class BenchCommand
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var settings = BenchSettings.Parse(args);
        var time = TimeProvider.System;
        var options = new NbdClientOptions { StructuredReplies = settings.StructuredReplies, InlineCompletions = true, TimeProvider = time };
        await using var pool = await NbdClientPool.ConnectAsync(settings.Uri, settings.Connections, options, ct).ConfigureAwait(false);
        var export = pool.Export;
        if (settings.BlockSize > export.MaximumPayload || settings.BlockSize % export.MinimumBlockSize != 0)
        {
            throw new CliUsageException($"bench: --bs {settings.BlockSize} does not fit the export's block sizes (minimum {export.MinimumBlockSize}, maximum {export.MaximumPayload})");
        }

        if (settings.Writes && export.IsReadOnly)
        {
            throw new NotSupportedException("the export is read-only; use --rw randread or read");
        }

        var blocks = Math.Min(export.Size, settings.SizeLimit ?? long.MaxValue) / settings.BlockSize;
        if (blocks == 0)
        {
            throw new CliUsageException($"bench: the export ({export.Size} bytes{(settings.SizeLimit is null ? string.Empty : ", limited")}) is smaller than one block of {settings.BlockSize}");
        }

        var region = new BenchRegion(blocks, settings.BlockSize);
        var pattern = new byte[settings.BlockSize];
        for (var i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)((i * 131) + (i >> 8) + 0x5a);
        }

        var workers = new List<BenchWorker>();
        foreach (var connection in pool.Connections)
        {
            for (var q = 0; q < settings.QueueDepth; q++)
            {
                workers.Add(new BenchWorker(connection, settings, region, pattern, time, seed: workers.Count + 1));
            }
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(settings.Duration);
        var started = time.GetTimestamp();
        var running = Task.WhenAll(workers.Select(w => Task.Run(() => w.RunAsync(stop.Token), CancellationToken.None)));
        var progress = new BenchProgress(stderr, workers, time, started);
        using (var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time))
        {
            while (!running.IsCompleted)
            {
                var tick = timer.WaitForNextTickAsync(CancellationToken.None).AsTask();
                await Task.WhenAny(tick, running).ConfigureAwait(false);
                if (!running.IsCompleted)
                {
                    await progress.ReportAsync().ConfigureAwait(false);
                }
            }
        }

        await progress.EndAsync().ConfigureAwait(false);
        try
        {
            await running.ConfigureAwait(false);
        }
        catch
        {
            // A worker that died took its connection with it; report the first cause, not an aggregate.
            throw running.Exception!.InnerExceptions[0];
        }

        var elapsed = time.GetElapsedTime(started);
        var latency = new LatencyHistogram();
        foreach (var worker in workers)
        {
            latency.Add(worker.Latency);
        }

        var result = new BenchResult(settings, elapsed, workers.Sum(w => w.Reads), workers.Sum(w => w.Writes), workers.Sum(w => w.Errors), latency);
        await stdout.WriteAsync(settings.Json ? result.ToJson() : result.ToText()).ConfigureAwait(false);
        if (result.Errors > 0)
        {
            await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"swapnbd-client: {result.Errors} requests failed with server errors")).ConfigureAwait(false);
            return ClientCli.ExitRuntime;
        }

        return ClientCli.ExitOk;
    }
}
