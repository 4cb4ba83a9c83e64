namespace Swap.Nbd.Client;

/// <summary>One NBD_REP_SERVER entry of an OPT_LIST reply.</summary>
public sealed record NbdExportListing(string Name, string Description);
