namespace Swap.Nbd.Client;

/// <summary>The outcome of option haggling: the export and the features both sides agreed on.</summary>
/// <param name="BaseAllocationContextId">Context id of base:allocation, or null if not selected (no BLOCK_STATUS).</param>
/// <param name="UsedExportName">True when the server did not know OPT_GO and OPT_EXPORT_NAME was used instead.</param>
public sealed record NbdNegotiation(NbdExportInfo Export, bool StructuredReplies, uint? BaseAllocationContextId, bool UsedExportName);
