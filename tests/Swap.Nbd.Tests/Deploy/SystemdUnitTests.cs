using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Deploy;

/// <summary>
/// deploy/systemd's units through systemd's own checker, `systemd-analyze verify` (systemd 252 here; no systemd runs
/// in this container, so the units are verified, not started). Verify insists that every program a unit runs exists,
/// so the test verifies copies with /usr/local/bin/swapnbd-* pointed at out/. That READY=1 and STOPPING=1 really
/// come is SystemdNotifyTests' part.
/// </summary>
[Category(Tier.Integration)]
public sealed class SystemdUnitTests
{
    private static readonly string[] Units = ["swapnbd-server.service", "swapnbd-daemon.service", "swapnbd-swap.service"];

    [Test, CancelAfter(60_000)]
    public async Task Every_unit_passes_systemd_analyze_verify_without_a_remark(CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("swapnbd-units-");
        try
        {
            OutBinary.Path("swapnbd-server");
            OutBinary.Path("swapnbd-daemon");
            foreach (var unit in Units)
            {
                var text = File.ReadAllText(Repo.Path("deploy", "systemd", unit));
                await File.WriteAllTextAsync(Path.Combine(dir.FullName, unit), text.Replace("/usr/local/bin/swapnbd-", Repo.Path("out", "swapnbd-"), StringComparison.Ordinal), ct);
            }

            var result = await ExternalTool.RunAsync("systemd-analyze", "systemd", ["verify", "--man=no", .. Units.Select(u => Path.Combine(dir.FullName, u))],
                TimeSpan.FromSeconds(30), ct);

            // Verify exits 0 even for an unknown key or a bad value: those are only printed, so nothing may be.
            Assert.That(result.ExitCode, Is.Zero, result.ToString());
            Assert.That(result.Stdout + result.Stderr, Is.Empty, "systemd-analyze verify has remarks (modprobe missing: apt-get install kmod)");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Test]
    public void The_server_and_daemon_are_Type_notify_and_the_swap_unit_waits_on_that_instead_of_polling()
    {
        foreach (var unit in new[] { "swapnbd-server.service", "swapnbd-daemon.service" })
        {
            var text = File.ReadAllText(Repo.Path("deploy", "systemd", unit));
            Assert.That(text, Does.Contain("\nType=notify\n").And.Contain("\nNotifyAccess=main\n"), unit);
        }

        var swap = File.ReadAllText(Repo.Path("deploy", "systemd", "swapnbd-swap.service"));
        Assert.That(swap, Does.Contain("\nRequires=swapnbd-server.service\n").And.Contain("\nAfter=swapnbd-server.service\n"));
        Assert.That(swap, Does.Not.Contain("sleep").And.Not.Contain("[ -S"), "no polling for the socket");
    }
}
