using System.Buffers.Text;
using Microsoft.Win32.SafeHandles;

namespace Swap.Donor;

/// <summary>MemAvailable from /proc/meminfo; the file stays open and is re-read from offset 0 into one buffer, so a reading allocates nothing.</summary>
public sealed class ProcMeminfo : IMemoryAvailability, IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly byte[] _buffer = new byte[8192];
    private readonly Lock _lock = new();

    public ProcMeminfo(string path = "/proc/meminfo") => _file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);

    public long GetAvailableBytes()
    {
        lock (_lock)
        {
            // seq_file regenerates the contents on a read at offset 0.
            var length = 0;
            int n;
            while (length < _buffer.Length && (n = RandomAccess.Read(_file, _buffer.AsSpan(length), length)) > 0)
            {
                length += n;
            }

            return Parse(_buffer.AsSpan(0, length));
        }
    }

    /// <summary>The "MemAvailable:  123 kB" line in bytes; throws if it is missing (kernels before 3.14).</summary>
    internal static long Parse(ReadOnlySpan<byte> text)
    {
        var key = "MemAvailable:"u8;
        var at = text.IndexOf(key);
        if (at < 0)
        {
            throw new InvalidDataException("/proc/meminfo has no MemAvailable line (kernel 3.14 or later is needed)");
        }

        var rest = text[(at + key.Length)..].TrimStart(" \t"u8);
        if (!Utf8Parser.TryParse(rest, out long kib, out _))
        {
            throw new InvalidDataException("/proc/meminfo: MemAvailable is not a number");
        }

        return kib * 1024;
    }

    public void Dispose() => _file.Dispose();
}
