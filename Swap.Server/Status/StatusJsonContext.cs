using System.Text.Json.Serialization;

namespace Swap.Server.Status;

/// <summary>Source-generated JSON for the status file (no reflection; camelCase keys, indented for people reading it).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ServerStatus))]
internal sealed partial class StatusJsonContext : JsonSerializerContext;
