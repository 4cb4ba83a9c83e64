using System.Net.Sockets;
using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.BadInput;

/// <summary>Random bytes and random request fields on fresh connections (fixed seed): the server must shrug them all off.</summary>
[Category(Tier.Integration)]
public sealed class FuzzTests
{
    private const int Seed = 20240611;
    private const ulong Size = 64UL << 20;

    [Test, CancelAfter(60_000)]
    public async Task Random_blobs_and_random_requests_do_not_hurt_the_server(CancellationToken ct)
    {
        await using var scenario = await BadInputScenario.StartAsync(ct, o => o.HandshakeTimeout = TimeSpan.FromSeconds(2));
        var random = new Random(Seed);

        for (var i = 0; i < 200; i++)
        {
            await ThrowBlobAsync(scenario, random, afterHandshake: i % 2 == 1, ct);
        }

        for (var i = 0; i < 200; i++)
        {
            await ThrowRandomRequestAsync(scenario, random, structured: i % 3 == 0, ct);
        }

        await scenario.WaitForConnectionCountAsync(1, TimeSpan.FromSeconds(10), ct);
        await scenario.AssertServerHealthyAsync(ct);
        var big = new byte[1 << 20];
        random.NextBytes(big);
        await scenario.Healthy.WriteAsync(8 << 20, big, ct);
        Assert.That(await scenario.Healthy.ReadAsync(8 << 20, big.Length, ct), Is.EqualTo(big));
    }

    /// <summary>Random bytes either straight after connecting (handshake phase) or after a proper OPT_GO (transmission).</summary>
    private static async Task ThrowBlobAsync(BadInputScenario scenario, Random random, bool afterHandshake, CancellationToken ct)
    {
        var blob = new byte[random.Next(1, 3000)];
        random.NextBytes(blob);
        if (!afterHandshake && random.Next(2) == 0 && blob.Length >= 24)
        {
            // Often keep the client flags sane so the junk reaches the option parser.
            blob.AsSpan(0, 4).Clear();
            blob[3] = 1;
            if (random.Next(2) == 0)
            {
                NbdOptionCodec.WriteHeader(blob.AsSpan(4), (NbdOption)random.Next(0, 16), (uint)random.Next(0, 64));
            }
        }

        await using var client = afterHandshake ? await scenario.OpenAsync(ct) : await scenario.ConnectAsync(ct);
        if (!afterHandshake)
        {
            await client.ReadGreetingAsync(ct);
        }

        await SendAndDrainAsync(client, blob, ct);
    }

    private static async Task ThrowRandomRequestAsync(BadInputScenario scenario, Random random, bool structured, CancellationToken ct)
    {
        await using var client = await scenario.OpenAsync(ct, structured, metaContext: structured && random.Next(2) == 0);
        var command = random.Next(10) switch
        {
            < 8 => (NbdCommand)random.Next(0, 9),
            8 => (NbdCommand)random.Next(9, 0x10000),
            _ => NbdCommand.Write,
        };
        var flags = (NbdCommandFlags)(random.Next(4) == 0 ? random.Next(0, 0x10000) : random.Next(0, 64));
        ulong[] offsets = [0, 512, 4096, Size - 4096, Size, Size + 1, 1UL << 63, ulong.MaxValue, ulong.MaxValue - 4095];
        var offset = random.Next(3) == 0 ? (ulong)random.NextInt64() : offsets[random.Next(offsets.Length)];
        uint[] lengths = [0, 1, 512, 4096, 65536, 32u << 20, (32u << 20) + 1, 64u << 20, 128u << 20, (128u << 20) + 1, uint.MaxValue];
        var length = random.Next(3) == 0 ? (uint)random.NextInt64(0, uint.MaxValue) : lengths[random.Next(lengths.Length)];
        var request = new NbdRequest(flags, command, (ulong)random.NextInt64(), offset, length);
        var frame = new byte[NbdRequest.Size + (command == NbdCommand.Write ? (int)Math.Min(length, 65536u) : 0)];
        request.Write(frame);
        random.NextBytes(frame.AsSpan(NbdRequest.Size));
        await SendAndDrainAsync(client, frame, ct);
    }

    /// <summary>Sends, then reads whatever comes back for a moment and hangs up.</summary>
    private static async Task SendAndDrainAsync(RawNbdClient client, byte[] bytes, CancellationToken ct)
    {
        try
        {
            await client.SendAsync(bytes, ct);
            client.Shutdown();
            await client.ReadUntilClosedAsync(TimeSpan.FromMilliseconds(50), ct);
        }
        catch (Exception ex) when (ex is IOException or SocketException or TimeoutException)
        {
            // The server may hang up first or keep waiting for more bytes; either is fine here.
        }
    }
}
