namespace Swap.Nbd.Client;

/// <summary>READ data that follows a reply header on the wire: whose it is, where in its buffer it goes, and whether it ends the request.</summary>
internal readonly record struct ReadData(PendingRequest Request, int At, int Length, bool Completes);
