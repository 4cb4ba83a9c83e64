namespace Swap.Nbd.Client.Cli;

/// <summary>The access pattern of a benchmark run (fio's --rw names).</summary>
internal enum BenchMode
{
    RandRead,
    RandWrite,
    Read,
    Write,
    RandRw,
}
