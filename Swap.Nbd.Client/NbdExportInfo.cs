using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>What the server told us about an export during negotiation.</summary>
/// <param name="BlockSizeAdvertised">False when the server sent no NBD_INFO_BLOCK_SIZE and the spec defaults apply.</param>
public sealed record NbdExportInfo(
    string Name,
    string? Description,
    long Size,
    NbdTransmissionFlags Flags,
    uint MinimumBlockSize,
    uint PreferredBlockSize,
    uint MaximumPayload,
    bool BlockSizeAdvertised)
{
    /// <summary>Spec defaults when nothing is advertised: any alignment, 4 KiB preferred, 32 MiB payloads.</summary>
    public const uint DefaultMinimumBlockSize = 1;
    public const uint DefaultPreferredBlockSize = 4096;
    public const uint DefaultMaximumPayload = 32 * 1024 * 1024;

    public bool IsReadOnly => Flags.HasFlag(NbdTransmissionFlags.ReadOnly);
    public bool CanMultiConn => Flags.HasFlag(NbdTransmissionFlags.CanMultiConn);
}
