using NUnit.Framework;
using Swap.Server;
using Swap.Common.Units;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Configuration;

[NonParallelizable]
[Category(Tier.Unit)]
public sealed class ServerSettingsTests
{
    [Test]
    public void Defaults_are_valid()
    {
        var errors = new List<string>();
        var options = ServerSettings.Load([], errors, out _);
        Assert.That(errors, Is.Empty);
        Assert.That(options.Nbd.Listen, Is.Empty, "no TCP unless asked for");
        Assert.That(options.Nbd.Socket, Is.EqualTo("/run/swapnbd/swapnbd.sock"), "the kernel's socket instead");
        Assert.That(options.Nbd.MaxHandshakes, Is.EqualTo(16));
        Assert.That(options.Size, Is.EqualTo(1L << 30));
    }

    [Test]
    public void Listen_alone_serves_tcp_only_and_with_socket_both()
    {
        var errors = new List<string>();
        var tcp = ServerSettings.Load(["--listen", "127.0.0.1:0"], errors, out _);
        Assert.That((tcp.Nbd.Listen, tcp.Nbd.Socket), Is.EqualTo(("127.0.0.1:0", (string?)null)));

        var both = ServerSettings.Load(["--listen", "127.0.0.1:0", "--socket", "/tmp/s/x.sock"], errors, out _);
        Assert.That((both.Nbd.Listen, both.Nbd.Socket), Is.EqualTo(("127.0.0.1:0", "/tmp/s/x.sock")));

        var socketOnly = ServerSettings.Load(["--socket", "/tmp/s/x.sock"], errors, out _);
        Assert.That((socketOnly.Nbd.Listen, socketOnly.Nbd.Socket), Is.EqualTo(("", "/tmp/s/x.sock")));

        var emptyListen = ServerSettings.Load(["--listen", ""], errors, out _);
        Assert.That(emptyListen.Nbd.Socket, Is.EqualTo("/run/swapnbd/swapnbd.sock"), "--listen \"\" is no TCP: the default socket");
        Assert.That(errors, Is.Empty);
    }

    [Test]
    public void Default_socket_follows_systemds_runtime_directory()
    {
        Environment.SetEnvironmentVariable("RUNTIME_DIRECTORY", "/run/elsewhere:/run/second");
        try
        {
            var errors = new List<string>();
            Assert.That(ServerSettings.Load([], errors, out _).Nbd.Socket, Is.EqualTo("/run/elsewhere/swapnbd.sock"));
            Assert.That(errors, Is.Empty);
        }
        finally
        {
            Environment.SetEnvironmentVariable("RUNTIME_DIRECTORY", null);
        }

        Assert.That(Swap.Nbd.Server.Hosting.NbdServerOptions.DefaultSocketPath(""), Is.EqualTo("/run/swapnbd/swapnbd.sock"));
    }

    [Test]
    public void Command_line_sets_every_option()
    {
        var errors = new List<string>();
        var options = ServerSettings.Load(
            ["--backend", "memory", "--size", "64GiB", "--listen", "127.0.0.1:0,[::1]:0", "--socket=/tmp/x.sock",
             "--export-name", "swap", "--max-connections", "8", "--max-handshakes", "3", "--handshake-timeout", "2.5", "--max-in-flight", "256MiB",
             "--shutdown-timeout", "00:00:03", "--poll-us", "0", "--log-level", "Debug"], errors, out var level);
        Assert.That(errors, Is.Empty);
        Assert.That(options.Size, Is.EqualTo(64L << 30));
        Assert.That(options.Nbd.SplitListen(), Is.EqualTo(new[] { "127.0.0.1:0", "[::1]:0" }));
        Assert.That(options.Nbd.Socket, Is.EqualTo("/tmp/x.sock"));
        Assert.That(options.Nbd.ExportName, Is.EqualTo("swap"));
        Assert.That(options.Nbd.MaxConnections, Is.EqualTo(8));
        Assert.That(options.Nbd.MaxHandshakes, Is.EqualTo(3));
        Assert.That(options.Nbd.HandshakeTimeout, Is.EqualTo(TimeSpan.FromSeconds(2.5)));
        Assert.That(options.Nbd.MaxInFlightBytes, Is.EqualTo(256L << 20));
        Assert.That(options.Nbd.ShutdownTimeout, Is.EqualTo(TimeSpan.FromSeconds(3)));
        Assert.That(options.Nbd.PollMicroseconds, Is.Zero);
        Assert.That(level, Is.EqualTo(Microsoft.Extensions.Logging.LogLevel.Debug));
    }

    [Test]
    public void Slab_mode_needs_the_cluster_key_or_insecure_no_auth()
    {
        string[] slabs = ["--portal", "/etc/swapnbd/portal.list", "--backup-disk", "/dev/null"];
        var errors = new List<string>();
        ServerSettings.Load(slabs, errors, out _);
        Assert.That(errors, Has.Count.EqualTo(1));
        Assert.That(errors[0], Does.StartWith("AuthKeyFile: slab mode talks only to daemons that hold the cluster key: give --auth-key-file PATH"));

        errors.Clear();
        var keyed = ServerSettings.Load([.. slabs, "--auth-key-file", TestKeys.File], errors, out _);
        Assert.That(errors, Is.Empty);
        Assert.That((keyed.AuthKeyFile, keyed.InsecureNoAuth), Is.EqualTo((TestKeys.File, false)));

        var insecure = ServerSettings.Load([.. slabs, "--insecure-no-auth"], errors, out _);
        Assert.That(errors, Is.Empty);
        Assert.That(insecure.InsecureNoAuth, Is.True);

        ServerSettings.Load(["--auth-key-file", TestKeys.File], errors, out _);
        Assert.That(errors, Is.EqualTo(new[] { "AuthKeyFile: only used with --backend slabs (the memory backend has no donors)" }));
    }

    [Test]
    public void Every_bad_value_is_reported_by_its_key_at_once()
    {
        var errors = new List<string>();
        ServerSettings.Load(["--size", "12XB", "--listen", "nohost", "--max-connections", "many", "--max-handshakes", "0", "--backend", "disk", "--handshake-timeout", "soon", "--poll-us", "-1"], errors, out _);
        Assert.That(errors, Has.Some.StartsWith("Size:"));
        Assert.That(errors, Has.Some.StartsWith("Listen:"));
        Assert.That(errors, Has.Some.StartsWith("MaxConnections:"));
        Assert.That(errors, Has.Some.StartsWith("MaxHandshakes:"));
        Assert.That(errors, Has.Some.StartsWith("Backend:"));
        Assert.That(errors, Has.Some.StartsWith("HandshakeTimeout:"));
        Assert.That(errors, Has.Some.StartsWith("PollMicroseconds:"));
    }

    [Test]
    public void Backup_io_defaults_to_auto_takes_direct_and_buffered_and_names_the_key_for_anything_else()
    {
        string[] slabs = ["--portal", "/etc/swapnbd/portal.list", "--backup-disk", "/dev/null", "--insecure-no-auth"];
        var errors = new List<string>();
        Assert.That(ServerSettings.Load(slabs, errors, out _).BackupIoMode, Is.EqualTo(Swap.Slabs.Backup.BackupIoMode.Auto));
        Assert.That(ServerSettings.Load([.. slabs, "--backup-io", "direct"], errors, out _).BackupIoMode, Is.EqualTo(Swap.Slabs.Backup.BackupIoMode.Direct));
        Assert.That(ServerSettings.Load([.. slabs, "--backup-io", "buffered"], errors, out _).BackupIoMode, Is.EqualTo(Swap.Slabs.Backup.BackupIoMode.Buffered));
        Assert.That(errors, Is.Empty);

        ServerSettings.Load([.. slabs, "--backup-io", "odirect"], errors, out _);
        Assert.That(errors, Has.Count.EqualTo(1));
        Assert.That(errors[0], Does.StartWith("BackupIo: 'odirect'").And.Contain("'auto'").And.Contain("'direct'").And.Contain("'buffered'"));
    }

    [Test]
    public void Unknown_switches_and_stray_arguments_are_refused()
    {
        var errors = new List<string>();
        ServerSettings.Load(["--sise", "1G", "stray"], errors, out _);
        Assert.That(errors, Has.Some.Contains("'--sise' is not known"));
        Assert.That(errors, Has.Some.Contains("'stray'"));
    }

    [Test]
    public void Json_file_then_environment_then_command_line()
    {
        var file = Path.Combine(Path.GetTempPath(), $"swapnbd-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, """{ "Size": "2GiB", "ExportName": "fromfile", "MaxConnections": 3 }""");
        Environment.SetEnvironmentVariable("SWAPNBD_EXPORT_NAME", "fromenv");
        Environment.SetEnvironmentVariable("SWAPNBD_MAXCONNECTIONS", "5");
        try
        {
            var errors = new List<string>();
            var options = ServerSettings.Load(["--config", file, "--max-connections", "7"], errors, out _);
            Assert.That(errors, Is.Empty);
            Assert.That(options.Size, Is.EqualTo(2L << 30));
            Assert.That(options.Nbd.ExportName, Is.EqualTo("fromenv"));
            Assert.That(options.Nbd.MaxConnections, Is.EqualTo(7));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SWAPNBD_EXPORT_NAME", null);
            Environment.SetEnvironmentVariable("SWAPNBD_MAXCONNECTIONS", null);
            File.Delete(file);
        }
    }

    [Test]
    public void Unknown_keys_in_the_file_are_refused_with_their_name()
    {
        var file = Path.Combine(Path.GetTempPath(), $"swapnbd-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, """{ "Sise": "2GiB" }""");
        try
        {
            var errors = new List<string>();
            ServerSettings.Load(["--config", file], errors, out _);
            Assert.That(errors, Has.Some.StartsWith("Sise: not a known setting"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public void Missing_or_broken_config_file_is_an_error()
    {
        var errors = new List<string>();
        ServerSettings.Load(["--config", "/nonexistent/x.json"], errors, out _);
        Assert.That(errors, Has.Some.StartsWith("Config:"));

        var file = Path.Combine(Path.GetTempPath(), $"swapnbd-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, "{ not json");
        try
        {
            errors.Clear();
            ServerSettings.Load(["--config", file], errors, out _);
            Assert.That(errors, Has.Some.StartsWith("Config:"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [TestCase("4096", 4096L)]
    [TestCase("512K", 512L << 10)]
    [TestCase("64MiB", 64L << 20)]
    [TestCase("1G", 1L << 30)]
    [TestCase("12GiB", 12L << 30)]
    [TestCase("2TB", 2L << 40)]
    public void Sizes_parse(string text, long bytes)
    {
        Assert.That(ByteSize.TryParse(text, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(bytes));
    }

    [TestCase("")]
    [TestCase("G")]
    [TestCase("-1G")]
    [TestCase("1.5G")]
    [TestCase("99999999999T")]
    public void Bad_sizes_do_not_parse(string text) => Assert.That(ByteSize.TryParse(text, out _), Is.False);

    [TestCase(-1)]
    [TestCase(100)]
    public void A_realtime_priority_outside_1_to_99_is_refused_with_its_key(int priority) =>
        Assert.That(new ServerOptions { RealtimePriority = priority }.Validate(),
            Has.Some.StartsWith($"RealtimePriority: {priority} is not a SCHED_RR priority; use 1-99"));

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(99)]
    public void A_realtime_priority_of_0_to_99_is_accepted(int priority) =>
        Assert.That(new ServerOptions { RealtimePriority = priority }.Validate(), Has.None.StartsWith("RealtimePriority"));
}
