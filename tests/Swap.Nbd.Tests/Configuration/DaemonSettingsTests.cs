using NUnit.Framework;
using Swap.Server;
using Swap.Donor.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Configuration;

[NonParallelizable]
[Category(Tier.Unit)]
public sealed class DaemonSettingsTests
{
    [Test]
    public void Defaults_are_valid_once_a_key_is_given()
    {
        var errors = new List<string>();
        DaemonSettings.Load([], errors, out _);
        Assert.That(errors, Has.Count.EqualTo(1));
        Assert.That(errors[0], Does.StartWith("AuthKeyFile: the daemon serves only servers that hold the cluster key: give --auth-key-file PATH"));

        errors.Clear();
        var options = DaemonSettings.Load(["--auth-key-file", TestKeys.File], errors, out _);
        Assert.That(errors, Is.Empty);
        Assert.That((options.AuthKeyFile, options.InsecureNoAuth), Is.EqualTo((TestKeys.File, false)));
        Assert.That(options.Listen, Is.EqualTo("127.0.0.1:9400"));
        Assert.That(options.MaxMemory, Is.EqualTo(8L << 30));
        Assert.That(options.Headroom, Is.EqualTo(1L << 30));
        Assert.That(options.MaxSlabsPerClient, Is.EqualTo(64));
        Assert.That(options.MaxClients, Is.EqualTo(32));
        Assert.That(options.HelloTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(options.GracePeriod, Is.EqualTo(TimeSpan.FromSeconds(30)));
    }

    [Test]
    public void Command_line_sets_every_option()
    {
        var errors = new List<string>();
        var options = DaemonSettings.Load(
            ["--listen", "[::1]:0", "--max-memory", "4GiB", "--headroom", "512M", "--max-slabs-per-client", "8", "--max-clients", "3",
             "--hello-timeout", "3", "--grace-period", "5s", "--monitor-interval", "0.5", "--evict-batch", "2", "--evict-extra-samples", "4", "--smoothing", "0.3",
             "--min-slab-size", "2MiB", "--max-slab-size", "1GiB", "--log-level", "Debug", "--auth-key-file", TestKeys.File], errors, out var level);
        Assert.That(errors, Is.Empty);
        Assert.That(options.AuthKeyFile, Is.EqualTo(TestKeys.File));
        Assert.That(options.Listen, Is.EqualTo("[::1]:0"));
        Assert.That(options.MaxMemory, Is.EqualTo(4L << 30));
        Assert.That(options.Headroom, Is.EqualTo(512L << 20));
        Assert.That(options.MaxSlabsPerClient, Is.EqualTo(8));
        Assert.That(options.MaxClients, Is.EqualTo(3));
        Assert.That(options.HelloTimeout, Is.EqualTo(TimeSpan.FromSeconds(3)));
        Assert.That(options.GracePeriod, Is.EqualTo(TimeSpan.FromSeconds(5)));
        Assert.That(options.MonitorInterval, Is.EqualTo(TimeSpan.FromSeconds(0.5)));
        Assert.That((options.EvictBatch, options.EvictExtraSamples), Is.EqualTo((2, 4)));
        Assert.That(options.MemAvailableSmoothing, Is.EqualTo(0.3));
        Assert.That((options.MinSlabSize, options.MaxSlabSize), Is.EqualTo((2L << 20, 1L << 30)));
        Assert.That(level, Is.EqualTo(Microsoft.Extensions.Logging.LogLevel.Debug));
    }

    [Test]
    public void Every_bad_value_is_reported_by_its_key_at_once()
    {
        var errors = new List<string>();
        DaemonSettings.Load(
            ["--listen", "nohost", "--max-memory", "0", "--headroom", "much", "--max-slabs-per-client", "0", "--max-clients", "x",
             "--hello-timeout", "0", "--grace-period", "-1", "--smoothing", "2", "--min-slab-size", "3MiB", "--max-slab-size", "64GiB", "--evict-batch", "0"], errors, out _);
        foreach (var key in new[] { "Listen:", "MaxMemory:", "Headroom:", "MaxSlabsPerClient:", "MaxClients:", "HelloTimeout:", "GracePeriod:", "MemAvailableSmoothing:", "MinSlabSize:", "MaxSlabSize:", "EvictBatch:" })
        {
            Assert.That(errors, Has.Some.StartsWith(key));
        }
    }

    [Test]
    public void Insecure_no_auth_is_a_flag_and_excludes_a_key()
    {
        var errors = new List<string>();
        var options = DaemonSettings.Load(["--insecure-no-auth"], errors, out _);
        Assert.That(errors, Is.Empty);
        Assert.That((options.AuthKeyFile, options.InsecureNoAuth), Is.EqualTo(((string?)null, true)));

        DaemonSettings.Load(["--insecure-no-auth", "--auth-key-file", TestKeys.File], errors, out _);
        Assert.That(errors, Is.EqualTo(new[] { "InsecureNoAuth: --insecure-no-auth and --auth-key-file exclude each other; drop one" }));
    }

    [Test]
    public void Environment_uses_the_daemon_prefix()
    {
        Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_MAX_MEMORY", "2GiB");
        Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_MAXCLIENTS", "5");
        try
        {
            var errors = new List<string>();
            var options = DaemonSettings.Load(["--max-clients", "7", "--insecure-no-auth"], errors, out _);
            Assert.That(errors, Is.Empty);
            Assert.That(options.MaxMemory, Is.EqualTo(2L << 30));
            Assert.That(options.MaxClients, Is.EqualTo(7), "the command line wins");
        }
        finally
        {
            Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_MAX_MEMORY", null);
            Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_MAXCLIENTS", null);
        }
    }

    [Test]
    public void Server_ignores_the_daemons_variables_but_still_refuses_unknown_ones()
    {
        Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_LISTEN", "127.0.0.1:9401");
        Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_MAX_MEMORY", "2GiB");
        try
        {
            var errors = new List<string>();
            var options = ServerSettings.Load([], errors, out _);
            Assert.That(errors, Is.Empty);
            Assert.That(options.Nbd.Listen, Is.Empty, "SWAPNBD_DAEMON_LISTEN is not the server's Listen");

            Environment.SetEnvironmentVariable("SWAPNBD_DAEMONIC", "1");
            ServerSettings.Load([], errors, out _);
            Assert.That(errors, Has.Some.StartsWith("DAEMONIC:"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_LISTEN", null);
            Environment.SetEnvironmentVariable("SWAPNBD_DAEMON_MAX_MEMORY", null);
            Environment.SetEnvironmentVariable("SWAPNBD_DAEMONIC", null);
        }
    }

    [Test]
    public void Readme_documents_every_switch_and_key()
    {
        var readme = File.ReadAllText(Swap.Nbd.Tests.Support.Repo.Path("README.md"));
        var usage = DaemonSettings.Usage;
        foreach (var (option, key) in DaemonSettings.Switches)
        {
            Assert.That(readme, Does.Contain($"`{option}"), option);
            Assert.That(usage, Does.Contain(option), option);
            if (key != "Config")
            {
                Assert.That(readme, Does.Contain($"`{key}`"), key);
            }
        }
    }
}
