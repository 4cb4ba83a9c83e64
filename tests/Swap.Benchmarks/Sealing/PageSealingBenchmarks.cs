using BenchmarkDotNet.Attributes;
using Swap.Slabs.Sealing;

namespace Swap.Benchmarks.Sealing;

/// <summary>
/// Sealing and opening one 4 KiB page (what a WRITE and a READ pay per page with SealPages on), next to the 4 KiB
/// copy every page costs anyway. 0 B allocated per operation is the target.
/// </summary>
[MemoryDiagnoser]
public class PageSealingBenchmarks
{
    private const int Pages = 1024;

    private readonly byte[] _page = new byte[SealedPage.PageSize];
    private readonly byte[] _sealed = new byte[SealedPage.Stride];
    private readonly byte[] _toOpen = new byte[SealedPage.Stride];
    private readonly byte[] _back = new byte[SealedPage.PageSize];
    private readonly uint[] _versions = new uint[1];
    private PageSealer? _sealer;
    private long _next;

    [Params(PageCipherAlgorithm.Aes256Gcm, PageCipherAlgorithm.ChaCha20Poly1305)]
    public PageCipherAlgorithm Algorithm { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        new Random(1).NextBytes(_page);
        _sealer = PageSealer.Create(Pages, Algorithm);
        _sealer.TrySeal(0, _page, _toOpen);
        _sealer.Versions.Snapshot(0, _versions);
    }

    [GlobalCleanup]
    public void Cleanup() => _sealer?.Dispose();

    /// <summary>What an unsealed page costs on its way: one copy.</summary>
    [Benchmark(Baseline = true)]
    public void Copy() => _page.CopyTo(_back, 0);

    /// <summary>One page sealed under its next version (pages 1..1023 in turn, so versions grow slowly).</summary>
    [Benchmark]
    public bool Seal() => _sealer!.TrySeal(1 + (_next++ % (Pages - 1)), _page, _sealed);

    /// <summary>One page opened (tag checked, decrypted).</summary>
    [Benchmark]
    public int Open() => _sealer!.Open(0, _versions, _toOpen, _back);
}
