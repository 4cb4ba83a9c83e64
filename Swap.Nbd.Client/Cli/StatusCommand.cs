using Swap.Nbd.Client.Netlink;

namespace Swap.Nbd.Client.Cli;

/// <summary><c>swapnbd-client status [DEV]</c>: NBD_CMD_STATUS, one line per device; exit 1 if DEV is not connected.</summary>
internal static class StatusCommand
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout)
    {
        var line = new CommandLine("status", args, [], []);
        if (line.Positionals.Count > 1)
        {
            throw new CliUsageException("status: expected at most one device");
        }

        uint? index = line.Positionals.Count == 1 ? NbdDeviceName.Parse("status", line.Positionals[0]) : null;
        using var netlink = NbdNetlink.Open();
        var devices = netlink.Status(index);
        foreach (var device in devices.OrderBy(d => d.Index))
        {
            await stdout.WriteLineAsync($"{NbdDeviceName.Format(device.Index)} {(device.Connected ? "connected" : "disconnected")}").ConfigureAwait(false);
        }

        return index is { } i && !devices.Any(d => d.Index == i && d.Connected) ? ClientCli.ExitRuntime : ClientCli.ExitOk;
    }
}
