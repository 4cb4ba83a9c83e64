using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A swap device attached with scripts/swap-attach.sh (nbdfuse + loop device on this host's kernel) and detached with
/// scripts/swap-detach.sh; disposal detaches too, so a failing test never leaves swap active on the machine.
/// </summary>
internal sealed class SwapAttachment : IAsyncDisposable
{
    public const string RunDirectory = "/run/swapnbd";

    private SwapAttachment(string name, string device)
    {
        Name = name;
        Device = device;
    }

    public string Name { get; }

    /// <summary>The block device that is swap (/dev/loopN here, /dev/nbdN with the nbd module).</summary>
    public string Device { get; }

    public string StateFile => Path.Combine(RunDirectory, "attach-" + Name);

    public string FuseDirectory => Path.Combine(RunDirectory, "fuse-" + Name);

    public static async Task<SwapAttachment> AttachAsync(string name, IEnumerable<string> args, CancellationToken ct)
    {
        var result = await ExternalTool.RunAsync(Repo.Path("scripts", "swap-attach.sh"), "the repository's scripts", ["--name", name, .. args], TimeSpan.FromSeconds(60), ct);
        var device = result.Stdout.Trim();
        if (result.ExitCode != 0 || !device.StartsWith("/dev/", StringComparison.Ordinal))
        {
            // The script undoes a partial attach itself; detach once more in case it was cut short.
            await ExternalTool.RunAsync(Repo.Path("scripts", "swap-detach.sh"), "the repository's scripts", ["--name", name], TimeSpan.FromSeconds(60), CancellationToken.None);
            Assert.Fail("swap-attach.sh failed\n" + result);
        }

        TestContext.Out.WriteLine(result.Stderr);
        return new SwapAttachment(name, device);
    }

    /// <summary>This device's line of /proc/swaps: size, used (bytes) and priority; null when it is not swap.</summary>
    public (long Size, long Used, int Priority)? SwapsEntry() => SwapsEntries().TryGetValue(Device, out var entry) ? entry : null;

    /// <summary>Every active swap area of the machine.</summary>
    public static Dictionary<string, (long Size, long Used, int Priority)> SwapsEntries() =>
        File.ReadLines("/proc/swaps").Skip(1)
            .Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .Where(p => p.Length >= 5)
            .ToDictionary(p => p[0], p => (long.Parse(p[2], CultureInfo.InvariantCulture) * 1024, long.Parse(p[3], CultureInfo.InvariantCulture) * 1024, int.Parse(p[4], CultureInfo.InvariantCulture)));

    public Task<ToolResult> DetachAsync(CancellationToken ct) =>
        ExternalTool.RunAsync(Repo.Path("scripts", "swap-detach.sh"), "the repository's scripts", ["--name", Name], TimeSpan.FromMinutes(3), ct);

    /// <summary>What of this attachment is still on the machine: swap, loop device, FUSE mount, nbdfuse, state; empty when all is gone.</summary>
    public IReadOnlyList<string> Leftovers() => LeftoversOf(Name, Device);

    /// <summary>What is left of the attachment <paramref name="name"/> (and of <paramref name="device"/> as swap, when known).</summary>
    public static IReadOnlyList<string> LeftoversOf(string name, string? device)
    {
        var left = new List<string>();
        if (device is not null && SwapsEntries().ContainsKey(device))
        {
            left.Add($"{device} is still swap");
        }

        var fuseDirectory = Path.Combine(RunDirectory, "fuse-" + name);
        var stateFile = Path.Combine(RunDirectory, "attach-" + name);
        foreach (var loop in Directory.GetDirectories("/sys/block", "loop*"))
        {
            var backing = Path.Combine(loop, "loop", "backing_file");
            if (File.Exists(backing) && File.ReadAllText(backing).Contains(fuseDirectory, StringComparison.Ordinal))
            {
                left.Add($"/dev/{Path.GetFileName(loop)} is still backed by {fuseDirectory}");
            }
        }

        if (File.ReadAllText("/proc/mounts").Contains(" " + fuseDirectory + " ", StringComparison.Ordinal))
        {
            left.Add($"{fuseDirectory} is still mounted");
        }

        foreach (var cmdline in Directory.GetDirectories("/proc").Where(d => char.IsAsciiDigit(Path.GetFileName(d)[0])))
        {
            try
            {
                var text = File.ReadAllText(Path.Combine(cmdline, "cmdline")).Replace('\0', ' ');
                if (text.Contains(fuseDirectory, StringComparison.Ordinal))
                {
                    left.Add($"process {Path.GetFileName(cmdline)} still runs: {text}");
                }
            }
            catch (IOException)
            {
                // Exited while we looked.
            }
        }

        if (File.Exists(stateFile))
        {
            left.Add($"state file {stateFile} remains");
        }

        if (Directory.Exists(fuseDirectory))
        {
            left.Add($"{fuseDirectory} remains");
        }

        return left;
    }

    public async ValueTask DisposeAsync()
    {
        if (File.Exists(StateFile))
        {
            var result = await DetachAsync(CancellationToken.None);
            if (result.ExitCode != 0)
            {
                await TestContext.Error.WriteLineAsync("swap-detach.sh during cleanup failed\n" + result);
            }
        }
    }
}
