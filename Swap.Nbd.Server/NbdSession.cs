namespace Swap.Nbd.Server;

/// <summary>What the handshake negotiated with one client, fixed for the rest of the connection.</summary>
/// <param name="Export">The export the client chose.</param>
/// <param name="StructuredReplies">NBD_OPT_STRUCTURED_REPLY was acknowledged: READ and BLOCK_STATUS replies are structured.</param>
/// <param name="NoZeroes">The client set NBD_FLAG_C_NO_ZEROES (only OPT_EXPORT_NAME's reply depends on it).</param>
/// <param name="MetaContextSelected">base:allocation was selected with SET_META_CONTEXT, so BLOCK_STATUS is allowed.</param>
internal sealed record NbdSession(NbdExport Export, bool StructuredReplies, bool NoZeroes, bool MetaContextSelected)
{
    /// <summary>The one meta context the server offers, base:allocation, has this id.</summary>
    public const uint BaseAllocationContextId = 1;
}
