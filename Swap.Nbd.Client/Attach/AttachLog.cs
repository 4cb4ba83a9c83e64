using System.Globalization;

namespace Swap.Nbd.Client.Attach;

/// <summary>
/// One timestamped line per step on stderr. Deliberately not Microsoft.Extensions.Logging: the attach path runs in a
/// locked-memory NativeAOT binary where every dependency costs resident memory, and its messages are rare.
/// </summary>
internal sealed class AttachLog(TextWriter writer, TimeProvider time)
{
    private readonly Lock _lock = new();

    public void Info(string message) => Write("info", message);

    public void Warn(string message) => Write("warning", message);

    public void Error(string message) => Write("error", message);

    private void Write(string level, string message)
    {
        var stamp = time.GetUtcNow().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
        lock (_lock)
        {
            writer.WriteLine($"swapnbd-client: {stamp} {level}: {message}");
            writer.Flush();
        }
    }
}
