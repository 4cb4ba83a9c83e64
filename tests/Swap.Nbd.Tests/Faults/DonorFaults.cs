namespace Swap.Nbd.Tests.Faults;

/// <summary>Failures a test switches on in a running donor daemon through its <see cref="DonorFaultLayer"/>.</summary>
[Flags]
internal enum DonorFaults
{
    None = 0,

    /// <summary>Requests are no longer read or answered; sockets stay open.</summary>
    Stall = 1,

    /// <summary>Every reply is replaced by random bytes.</summary>
    Garbage = 2,

    /// <summary>Every open connection is closed at once, and new ones right after accept while the flag is set.</summary>
    DropConnections = 4,
}
