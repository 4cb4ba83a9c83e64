using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A network lab of scripts/netlab.sh for one test (the script is the one core; this only calls it): a server-side
/// namespace and one namespace per donor, each linked by a veth pair in 198.18.0.0/15, with loss, partitions and rate
/// limits as nftables rules and tbf in those namespaces. The lab's owner is this test process, so a run that dies
/// leaves labs that the next run's first <see cref="UpAsync"/> sweeps away; disposal removes the lab and kills
/// whatever still runs in it.
/// </summary>
internal sealed class NetLab : IAsyncDisposable
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(60);
    private static readonly SemaphoreSlim Sweep = new(1, 1);
    private static bool _swept;
    private bool _down;

    private NetLab(string name, int donors)
    {
        Name = name;
        Donors = donors;
    }

    /// <summary>The lab's name (netlab.sh's LAB: up to 8 of a-z and 0-9).</summary>
    public string Name { get; }

    public int Donors { get; }

    /// <summary>The namespace the server runs in.</summary>
    public string ServerNamespace => $"swl-{Name}-srv";

    /// <summary>Donor <paramref name="k"/>'s namespace (1-based, as netlab.sh counts).</summary>
    public string DonorNamespace(int k) => $"swl-{Name}-d{k}";

    /// <summary>Donor <paramref name="k"/>'s address in its namespace; the server side of its link is 198.18.K.1.</summary>
    public static string DonorAddress(int k) => $"198.18.{k}.2";

    /// <summary>The prefix that runs a command in <paramref name="node"/>'s namespace ("srv" or "dK"): netlab.sh exec.</summary>
    public IReadOnlyList<string> Wrapper(string node) => [Script, "exec", Name, node];

    private static string Script => Repo.Path("scripts", "netlab.sh");

    /// <summary>Makes a lab with <paramref name="donors"/> donor namespaces, after sweeping labs whose owner died.</summary>
    public static async Task<NetLab> UpAsync(int donors, CancellationToken ct)
    {
        await Sweep.WaitAsync(ct);
        try
        {
            if (!_swept)
            {
                Check(await RunAsync(["sweep"], ct));
                _swept = true;
            }
        }
        finally
        {
            Sweep.Release();
        }

        var name = "t" + Guid.NewGuid().ToString("N")[..7];
        var lab = new NetLab(name, donors);
        var up = await RunAsync(["up", name, "--donors", donors.ToString(CultureInfo.InvariantCulture), "--owner", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)], ct);
        if (up.ExitCode != 0)
        {
            await lab.DisposeAsync();
            Assert.Fail("netlab.sh up failed\n" + up);
        }

        Assert.That(up.Stdout, Does.Contain($"NETLAB_SRV_NS={lab.ServerNamespace}\n").And.Contain($"NETLAB_D{donors}_ADDR={DonorAddress(donors)}\n"), up.ToString());
        return lab;
    }

    /// <summary>Drops <paramref name="percent"/> % of donor <paramref name="k"/>'s packets (replaces an earlier loss).</summary>
    public async Task LossAsync(int k, double percent, LinkDirection direction = LinkDirection.Both, CancellationToken ct = default) =>
        Check(await RunAsync(["loss", Name, K(k), percent.ToString("0.###", CultureInfo.InvariantCulture), Direction(direction)], ct));

    /// <summary>Drops every packet of donor <paramref name="k"/>'s link that goes <paramref name="direction"/>: no RST, no FIN.</summary>
    public async Task PartitionAsync(int k, LinkDirection direction = LinkDirection.Both, CancellationToken ct = default) =>
        Check(await RunAsync(["partition", Name, K(k), Direction(direction)], ct));

    /// <summary>Removes donor <paramref name="k"/>'s loss and partition (a rate limit stays).</summary>
    public async Task HealAsync(int k, CancellationToken ct = default) => Check(await RunAsync(["heal", Name, K(k)], ct));

    /// <summary>Limits each direction of donor <paramref name="k"/>'s link to <paramref name="rate"/> (tc units, e.g. 100mbit), or "off".</summary>
    public async Task RateAsync(int k, string rate, CancellationToken ct = default) => Check(await RunAsync(["rate", Name, K(k), rate], ct));

    /// <summary>Runs a command to completion in <paramref name="node"/>'s namespace ("srv" or "dK").</summary>
    public Task<ToolResult> ExecAsync(string node, IEnumerable<string> command, CancellationToken ct) =>
        RunAsync(["exec", Name, node, .. command], ct);

    /// <summary>TCP segments retransmitted in <paramref name="node"/>'s namespace so far (/proc/net/snmp there): a loss that happened.</summary>
    public async Task<long> RetransmittedSegmentsAsync(string node, CancellationToken ct)
    {
        var snmp = Check(await ExecAsync(node, ["cat", "/proc/net/snmp"], ct));
        var tcp = snmp.Stdout.Split('\n').Where(l => l.StartsWith("Tcp: ", StringComparison.Ordinal)).ToArray();
        Assert.That(tcp, Has.Length.EqualTo(2), snmp.ToString());
        var index = Array.IndexOf(tcp[0].Split(' '), "RetransSegs");
        return long.Parse(tcp[1].Split(' ')[index], CultureInfo.InvariantCulture);
    }

    /// <summary>Whether any of the lab's namespaces still exists (none after disposal).</summary>
    public bool IsPresent => Directory.Exists("/run/netns") && Directory.EnumerateFiles("/run/netns", $"swl-{Name}-*").Any();

    public async ValueTask DisposeAsync()
    {
        if (_down)
        {
            return;
        }

        _down = true;
        var down = await RunAsync(["down", Name], CancellationToken.None);
        if (down.ExitCode != 0)
        {
            await TestContext.Error.WriteLineAsync("netlab.sh down failed\n" + down);
        }
    }

    private static string K(int k) => k.ToString(CultureInfo.InvariantCulture);

    private static string Direction(LinkDirection direction) => direction switch
    {
        LinkDirection.ToDonor => "to-donor",
        LinkDirection.FromDonor => "from-donor",
        _ => "both",
    };

    private static Task<ToolResult> RunAsync(IEnumerable<string> args, CancellationToken ct) =>
        ExternalTool.RunAsync(Script, "the repository's scripts", args, ScriptTimeout, ct);

    private static ToolResult Check(ToolResult result)
    {
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        return result;
    }
}
