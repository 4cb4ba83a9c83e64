using NUnit.Framework;
using Swap.Server;
using Swap.Nbd.Tests.Support;
using Swap.Donor.Hosting;

namespace Swap.Nbd.Tests.Configuration;

/// <summary>The settings files shipped for systemd (deploy/systemd) hold only keys and values the programs accept.</summary>
[NonParallelizable]
[Category(Tier.Unit)]
public sealed class DeployExampleTests
{
    private const string ClusterKeyPath = "/etc/swapnbd/cluster.key";

    [Test]
    public void Server_environment_file_is_valid()
    {
        var errors = WithEnvironment("swapnbd-server.env.example", () =>
        {
            var errors = new List<string>();
            var options = ServerSettings.Load([], errors, out _);
            Assert.That(options.Backend, Is.EqualTo("slabs"));
            Assert.That(options.LockMemory, Is.True);
            return errors;
        });
        Assert.That(errors, Is.Empty);
    }

    [Test]
    public void Daemon_environment_file_is_valid()
    {
        var errors = WithEnvironment("swapnbd-daemon.env.example", () =>
        {
            var errors = new List<string>();
            var options = DaemonSettings.Load([], errors, out _);
            Assert.That(options.MaxMemory, Is.EqualTo(16L << 30));
            return errors;
        });
        Assert.That(errors, Is.Empty);
    }

    [Test]
    public void Every_key_of_the_environment_files_is_declared()
    {
        // Empty values included: Server_environment_file_is_valid cannot set those, so it would not see them refused.
        CheckDeclared("swapnbd-server.env.example", ServerSettings.EnvironmentPrefix, ServerSettings.Options.Select(s => s.Key));
        CheckDeclared("swapnbd-daemon.env.example", DaemonSettings.EnvironmentPrefix, DaemonSettings.Options.Select(s => s.Key));
    }

    [Test]
    public void Units_name_the_files_they_are_shipped_with()
    {
        var server = File.ReadAllText(Repo.Path("deploy", "systemd", "swapnbd-server.service"));
        var daemon = File.ReadAllText(Repo.Path("deploy", "systemd", "swapnbd-daemon.service"));
        var swap = File.ReadAllText(Repo.Path("deploy", "systemd", "swapnbd-swap.service"));
        var serverEnv = File.ReadAllText(Repo.Path("deploy", "systemd", "swapnbd-server.env.example"));
        Assert.That(server, Does.Contain("EnvironmentFile=/etc/swapnbd/server.env").And.Contain("LimitMEMLOCK=infinity").And.Contain("OOMScoreAdjust=-1000"));
        Assert.That(daemon, Does.Contain("EnvironmentFile=/etc/swapnbd/daemon.env").And.Contain("LimitMEMLOCK=infinity"));
        Assert.That(serverEnv, Does.Contain("SWAPNBD_SOCKET=/run/swapnbd/swapnbd.sock"), "the socket swapnbd-swap.service attaches");
        Assert.That(serverEnv, Does.Not.Contain("\nSWAPNBD_LISTEN="), "no TCP export in the shipped settings");
        Assert.That(server, Does.Contain("RuntimeDirectory=swapnbd\nRuntimeDirectoryMode=0700"), "the socket's directory is root's alone");
        Assert.That(swap, Does.Contain("-unix /run/swapnbd/swapnbd.sock").And.Contain("After=swapnbd-server.service"));
        foreach (var unit in new[] { server, daemon })
        {
            Assert.That(unit, Does.Contain($"ExecStartPre=+/bin/sh -c '[ -e {ClusterKeyPath} ] || /usr/local/bin/swapnbd-daemon keygen {ClusterKeyPath}'"),
                "a missing cluster key is made before the program starts");
        }
    }

    private static void CheckDeclared(string file, string prefix, IEnumerable<string> keys)
    {
        var declared = keys.Select(k => k.ToUpperInvariant()).ToHashSet();
        var variables = File.ReadAllLines(Repo.Path("deploy", "systemd", file))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2)[0])
            .ToList();
        Assert.That(variables, Is.Not.Empty, file);
        foreach (var variable in variables)
        {
            Assert.That(variable, Does.StartWith(prefix), file);
            Assert.That(declared, Does.Contain(variable[prefix.Length..].Replace("_", "", StringComparison.Ordinal)), $"{file}: {variable}");
        }
    }

    /// <summary>Sets every non-empty KEY=value of the file (an empty value cannot be set from .NET), runs <paramref name="load"/>, restores.</summary>
    private static List<string> WithEnvironment(string file, Func<List<string>> load)
    {
        var pairs = File.ReadAllLines(Repo.Path("deploy", "systemd", file))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2))
            .ToList();
        Assert.That(pairs, Has.All.Length.EqualTo(2), "every line is KEY=value");
        try
        {
            foreach (var pair in pairs)
            {
                var value = pair[1];
                if (pair[0].EndsWith("AUTH_KEY_FILE", StringComparison.Ordinal))
                {
                    // The shipped path (made by the units' keygen) does not exist here: the run's key stands in.
                    Assert.That(value, Is.EqualTo(ClusterKeyPath), file);
                    value = TestKeys.File;
                }

                Environment.SetEnvironmentVariable(pair[0], value.Length > 0 ? value : null);
            }

            return load();
        }
        finally
        {
            foreach (var pair in pairs)
            {
                Environment.SetEnvironmentVariable(pair[0], null);
            }
        }
    }
}
