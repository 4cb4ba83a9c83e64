using Swap.Nbd.Tests.Support;

namespace Swap.Benchmarks.Server;

/// <summary>
/// The export the request-path benchmarks drive: the tests' in-process server (<see cref="TestServer"/>, linked into
/// this project) on a Unix socket only, over a memory device whose first half is written.
/// </summary>
internal static class BenchExport
{
    public const long DeviceSize = 64L << 20;

    /// <summary>Requests stay inside this pre-written range, so reads copy real pages instead of zero-filling holes.</summary>
    public const long FilledBytes = 32L << 20;

    public static TestServer Start()
    {
        var server = TestServer.Start(DeviceSize, o => o.Listen = "");
        var page = new byte[4096];
        Random.Shared.NextBytes(page);
        for (long offset = 0; offset < FilledBytes; offset += page.Length)
        {
            server.Device.TryWrite(offset, page, fua: false);
        }

        return server;
    }
}
