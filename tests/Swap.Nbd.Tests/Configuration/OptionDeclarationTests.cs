using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Swap.Common.Configuration;
using Swap.Donor.Hosting;
using Swap.MemTest;
using Swap.Nbd.Tests.Support;
using Swap.Server;

namespace Swap.Nbd.Tests.Configuration;

/// <summary>
/// The option declarations of swapnbd-server, swapnbd-daemon and swapnbd-memtest are what --help prints, what the
/// README's option tables say (switch, key, default, row by row) and what the programs really default to.
/// </summary>
[Category(Tier.Unit), NonParallelizable]
public sealed partial class OptionDeclarationTests
{
    [Test]
    public void Readme_server_table_is_the_declarations() =>
        Assert.That(ReadmeTable("## swapnbd-server", columns: 3), Is.EqualTo(SettingRows(ServerSettings.Options)));

    [Test]
    public void Readme_daemon_table_is_the_declarations() =>
        Assert.That(ReadmeTable("## swapnbd-daemon", columns: 3), Is.EqualTo(SettingRows(DaemonSettings.Options)));

    [Test]
    public void Readme_memtest_table_is_the_declarations() =>
        Assert.That(ReadmeTable("### swapnbd-memtest", columns: 2), Is.EqualTo(MemTestOptions.Switches.Select(s => new[] { $"`{s.Synopsis}`", s.Default }).ToList()));

    [Test]
    public void Usage_lists_every_declared_option_with_its_default()
    {
        CheckUsage(ServerSettings.Usage, ServerSettings.Options);
        CheckUsage(DaemonSettings.Usage, DaemonSettings.Options);
        CheckUsage(MemTestOptions.Usage, MemTestOptions.Switches);
    }

    [Test]
    public void Documented_server_defaults_are_the_defaults()
    {
        var plain = ServerSettings.Load([], new List<string>(), out var plainLevel);
        foreach (var (spec, value) in Documented(ServerSettings.Options))
        {
            var errors = new List<string>();
            var given = ServerSettings.Load([$"{spec.Switch}={value}"], errors, out var level);
            Assert.That(errors, Is.Empty, spec.Switch);
            Assert.That((Json(given), level), Is.EqualTo((Json(plain), plainLevel)), $"{spec.Switch} {value} is what the server does without it");
        }
    }

    [Test]
    public void Documented_daemon_defaults_are_the_defaults()
    {
        // The daemon needs a key or --insecure-no-auth to load without errors; the flag changes nothing else.
        var plain = DaemonSettings.Load(["--insecure-no-auth"], new List<string>(), out var plainLevel);
        foreach (var (spec, value) in Documented(DaemonSettings.Options))
        {
            var errors = new List<string>();
            var given = DaemonSettings.Load([$"{spec.Switch}={value}", "--insecure-no-auth"], errors, out var level);
            Assert.That(errors, Is.Empty, spec.Switch);
            Assert.That((Json(given), level), Is.EqualTo((Json(plain), plainLevel)), $"{spec.Switch} {value} is what the daemon does without it");
        }
    }

    [Test]
    public void Documented_memtest_defaults_are_the_defaults()
    {
        var plain = Json(MemTestOptions.Parse([], new List<string>()));
        foreach (var (spec, value) in Documented(MemTestOptions.Switches))
        {
            var errors = new List<string>();
            var given = MemTestOptions.Parse([spec.Switch, value], errors);
            Assert.That(errors, Is.Empty, spec.Switch);
            Assert.That(Json(given), Is.EqualTo(plain), $"{spec.Switch} {value} is what memtest does without it");
        }
    }

    [Test]
    public void Every_key_and_switch_is_declared_once()
    {
        foreach (var keys in new[] { ServerSettings.Options.Select(s => s.Key), DaemonSettings.Options.Select(s => s.Key), ServerSettings.Switches.Keys, DaemonSettings.Switches.Keys, MemTestOptions.Switches.Select(s => s.Switch) })
        {
            Assert.That(keys, Is.Unique);
        }
    }

    private static void CheckUsage(string usage, IEnumerable<OptionSpec> specs)
    {
        foreach (var spec in specs)
        {
            if (spec.Help is null)
            {
                Assert.That(usage, Does.Contain($"[{spec.Switch} "), spec.Switch);
                continue;
            }

            Assert.That(usage, Does.Contain($"\n  {spec.Synopsis} "), spec.Switch);
            if (spec.Help.Contains("(default", StringComparison.Ordinal) && FirstCode(spec.Default) is { } value)
            {
                Assert.That(spec.Help, Does.Contain($"(default {value}"), $"{spec.Switch}: --help and README give the same default");
            }
        }
    }

    private static IEnumerable<(T Spec, string Value)> Documented<T>(IEnumerable<T> specs)
        where T : OptionSpec =>
        specs.Select(s => (s, FirstCode(s.Default))).Where(x => x.Item2 is not null).Select(x => (x.s, x.Item2!));

    private static string? FirstCode(string cell)
    {
        var match = CodeSpan().Match(cell);
        return match.Success && match.Index == 0 ? match.Groups[1].Value : null;
    }

    private static List<string[]> SettingRows<T>(IEnumerable<SettingSpec<T>> specs) =>
        specs.Select(s => new[] { $"`{s.Synopsis}`", s.Key == "Config" ? "–" : $"`{s.Key}`", s.Default }).ToList();

    /// <summary>The first table after <paramref name="heading"/>: its rows, each cut to the first cells, '\|' read as '|'.</summary>
    private static List<string[]> ReadmeTable(string heading, int columns)
    {
        var lines = File.ReadAllLines(Repo.Path("README.md"));
        var start = Array.FindIndex(lines, l => l.StartsWith(heading, StringComparison.Ordinal));
        Assert.That(start, Is.GreaterThanOrEqualTo(0), heading);
        var rows = lines.Skip(start + 1)
            .SkipWhile(l => !l.StartsWith('|'))
            .TakeWhile(l => l.StartsWith('|'))
            .Skip(2) // header and separator
            .Select(l => CellSeparator().Split(l.Trim('|')).Select(c => c.Trim().Replace("\\|", "|", StringComparison.Ordinal)).Take(columns).ToArray())
            .ToList();
        Assert.That(rows, Is.Not.Empty, heading);
        return rows;
    }

    private static string Json<T>(T value) => JsonSerializer.Serialize(value);

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex CellSeparator();
}
