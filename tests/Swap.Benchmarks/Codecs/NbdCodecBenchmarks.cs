using BenchmarkDotNet.Attributes;
using Swap.Nbd.Protocol;

namespace Swap.Benchmarks.Codecs;

/// <summary>The transmission-phase codecs every request and reply goes through.</summary>
[MemoryDiagnoser]
public class NbdCodecBenchmarks
{
    private readonly byte[] _request = new byte[NbdRequest.Size];
    private readonly byte[] _output = new byte[64];
    private readonly NbdRequest _template = new(NbdCommandFlags.Fua, NbdCommand.Write, 0x0102030405060708, 1L << 30, 4096);

    [GlobalSetup]
    public void Setup() => _template.Write(_request);

    [Benchmark]
    public ulong RequestTryRead()
    {
        NbdRequest.TryRead(_request, out var request);
        return request.Cookie ^ request.Offset;
    }

    [Benchmark]
    public void RequestWrite() => _template.Write(_output);

    [Benchmark]
    public void SimpleReplyWrite() => new NbdSimpleReply(NbdError.None, 0x0102030405060708).Write(_output);

    [Benchmark]
    public void StructuredOffsetDataPrefix() =>
        NbdStructuredReply.WriteOffsetDataPrefix(_output, NbdReplyFlags.Done, 0x0102030405060708, 1L << 30, 4096);

    [Benchmark]
    public void StructuredError() => NbdStructuredReply.WriteError(_output, 0x0102030405060708, NbdError.Io);

    [Benchmark]
    public void StructuredBlockStatusPrefix() =>
        NbdStructuredReply.WriteBlockStatusPrefix(_output, 0x0102030405060708, 1, 4);
}
