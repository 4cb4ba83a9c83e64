using Swap.Nbd.Client.Netlink;

namespace Swap.Nbd.Client.Cli;

/// <summary><c>swapnbd-client detach DEV</c>: NBD_CMD_DISCONNECT.</summary>
internal static class DetachCommand
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout)
    {
        var line = new CommandLine("detach", args, [], []);
        if (line.Positionals.Count != 1)
        {
            throw new CliUsageException(line.Positionals.Count == 0 ? "detach: missing device" : "detach: expected exactly one device");
        }

        var index = NbdDeviceName.Parse("detach", line.Positionals[0]);
        using var netlink = NbdNetlink.Open();
        netlink.Disconnect(index);
        await stdout.WriteLineAsync($"{NbdDeviceName.Format(index)} detached").ConfigureAwait(false);
        return ClientCli.ExitOk;
    }
}
