namespace Swap.Nbd.Client.Attach;

/// <summary>Why <see cref="PersistentAttachment.RunAsync"/> ended; the command line turns it into an exit code.</summary>
internal enum PersistOutcome
{
    /// <summary>Asked to stop (SIGTERM); the device stays attached.</summary>
    Stopped,

    /// <summary>The device is no longer connected (detached, or the dead-connection timeout ran out).</summary>
    DeviceGone,
}
