using Swap.Common.Hosting;
using Swap.Nbd.Client.Attach;
using Swap.Nbd.Client.Netlink;

namespace Swap.Nbd.Client.Cli;

/// <summary>
/// <c>swapnbd-client attach URI ...</c>: handshakes, binds the connections to an nbd device over netlink and prints
/// the device; with --persist it stays up and replaces dead connections (see <see cref="PersistentAttachment"/>).
/// </summary>
internal static class AttachCommand
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var settings = AttachArguments.Parse(args);
        var time = TimeProvider.System;
        var log = new AttachLog(stderr, time);
        using var netlink = NbdNetlink.Open();
        NetlinkSocket? notices = null;
        try
        {
            if (settings.Persist)
            {
                PersistentAttachment.ProtectProcess(log);

                // Before CONNECT, so no LINK_DEAD can slip between the two.
                notices = netlink.Subscribe();
            }

            var (index, _) = await KernelAttacher.AttachAsync(netlink, settings, log, ct).ConfigureAwait(false);
            var device = NbdDeviceName.Format(index);
            await stdout.WriteLineAsync(device).ConfigureAwait(false);
            await stdout.FlushAsync(ct).ConfigureAwait(false);
            if (notices is null)
            {
                return ClientCli.ExitOk;
            }

            log.Info($"attached {device}; persisting ({ProcessGuard.LockedMemory()}, dead-connection timeout {(settings.DeadTimeoutSeconds is { } d ? d + " s" : "kernel default")})");
            var outcome = await new PersistentAttachment(netlink, notices, index, settings, log, time).RunAsync(ct).ConfigureAwait(false);
            return outcome == PersistOutcome.DeviceGone ? ClientCli.ExitRuntime : ClientCli.ExitOk;
        }
        finally
        {
            notices?.Dispose();
        }
    }
}
