using System.Text.Json;

namespace Swap.Nbd.Tests.Support;

/// <summary>One daemon's entry in the server's status file (<c>slabs.daemons[]</c>).</summary>
internal sealed record StatusDaemon(string Name, bool Up, int Slabs, long Bytes)
{
    /// <summary>Every daemon of a status file's root element.</summary>
    public static List<StatusDaemon> All(JsonElement status) =>
        [.. status.GetProperty("slabs").GetProperty("daemons").EnumerateArray().Select(d => new StatusDaemon(
            d.GetProperty("name").GetString()!, d.GetProperty("up").GetBoolean(), d.GetProperty("slabs").GetInt32(), d.GetProperty("bytes").GetInt64()))];
}
