namespace Swap.Common.Status;

/// <summary>What every status file says first: when it was written and the state of the process that wrote it.</summary>
public interface IStatusSnapshot
{
    DateTimeOffset Time { get; }

    string State { get; }
}
