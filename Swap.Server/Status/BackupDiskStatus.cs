namespace Swap.Server.Status;

/// <summary>The backup disk in the status file: it holds every written page; some of them nowhere else right now.</summary>
public sealed record BackupDiskStatus(string Path, long Bytes, long BytesOnlyHere);
