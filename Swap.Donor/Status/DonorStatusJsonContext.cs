using System.Text.Json.Serialization;

namespace Swap.Donor.Status;

/// <summary>Source-generated JSON for the daemon's status file (no reflection; camelCase keys, indented for people reading it).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(DonorStatus))]
internal sealed partial class DonorStatusJsonContext : JsonSerializerContext;
