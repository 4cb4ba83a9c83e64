using System.Text;
using System.Runtime.Versioning;
using NUnit.Framework;
using Swap.Common.Security;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Security;

/// <summary>The key file: keygen's format and mode, and every way a file is refused at load (path, problem, fix).</summary>
[Category(Tier.Unit)]
[UnsupportedOSPlatform("windows")]
public sealed class ClusterKeyFileTests
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const string Hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    [Test]
    public void Key_text_is_64_lowercase_hex_digits_and_a_newline()
    {
        var key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var text = new byte[ClusterKeyText.Size];
        ClusterKeyText.Format(key, text);
        Assert.That(Encoding.ASCII.GetString(text), Is.EqualTo(Hex + "\n"));

        var back = new byte[32];
        Assert.That(ClusterKeyText.TryParse(text, back), Is.True);
        Assert.That(back, Is.EqualTo(key));
        Assert.That(ClusterKeyText.TryParse(Encoding.ASCII.GetBytes(Hex.ToUpperInvariant()), back), Is.True, "upper case, no newline");
        Assert.That(back, Is.EqualTo(key));
        Assert.That(ClusterKeyText.TryParse(Encoding.ASCII.GetBytes(Hex + "\r\n"), back), Is.False);
        Assert.That(ClusterKeyText.TryParse(Encoding.ASCII.GetBytes(Hex[..62] + "g0\n"), back), Is.False);
        Assert.That(ClusterKeyText.TryParse(Encoding.ASCII.GetBytes(Hex[..62] + "\n"), back), Is.False);
        Assert.That(ClusterKey.FromBytes(key).ToString(), Does.Not.Contain("0001"), "a key never prints itself");
    }

    [Test]
    public void Keygen_writes_a_new_random_key_with_mode_0600_and_never_overwrites_without_force()
    {
        var path = TestKeys.ScratchPath($"keygen-{Guid.NewGuid():N}.key");
        ClusterKeyFile.Create(path, force: false);
        Assert.That(File.GetUnixFileMode(path), Is.EqualTo(OwnerOnly));
        var first = File.ReadAllText(path);
        Assert.That(first, Does.Match("^[0-9a-f]{64}\n$"));
        Assert.That(Convert.ToHexStringLower(ClusterKeyFile.Load(path).AsSpan()), Is.EqualTo(first.TrimEnd('\n')));

        Assert.That(() => ClusterKeyFile.Create(path, force: false), Throws.TypeOf<ClusterKeyException>().With.Message.Contains($"{path} exists").And.Message.Contains("--force"));
        Assert.That(File.ReadAllText(path), Is.EqualTo(first), "the existing key is left alone");

        File.SetUnixFileMode(path, OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        ClusterKeyFile.Create(path, force: true);
        Assert.That(File.ReadAllText(path), Is.Not.EqualTo(first).And.Match("^[0-9a-f]{64}\n$"));
        Assert.That(File.GetUnixFileMode(path), Is.EqualTo(OwnerOnly), "a replaced key gets a new 0600 file, not the old file's mode");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + ".new-*"), Is.Empty);
    }

    [TestCase("group-read", Hex + "\n", 0b110_100_000, "may be read or written by group or others (mode 0640); run: chmod 600 ")]
    [TestCase("other-read", Hex + "\n", 0b110_000_100, "(mode 0604); run: chmod 600 ")]
    [TestCase("group-write", Hex + "\n", 0b110_010_000, "(mode 0620); run: chmod 600 ")]
    [TestCase("short", "0123456789abcdef\n", 0b110_000_000, "holds 17 bytes, not a regular file of 64 hex digits and a newline")]
    [TestCase("long", Hex + "\n\n", 0b110_000_000, "holds 66 bytes")]
    [TestCase("empty", "", 0b110_000_000, "holds 0 bytes")]
    [TestCase("not-hex", "zz" + "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0b110_000_000, "is not 64 hex digits and a newline")]
    public void A_bad_key_file_is_refused_naming_the_path_and_the_fix(string name, string content, int mode, string expected)
    {
        var path = TestKeys.ScratchPath($"{name}-{Guid.NewGuid():N}.key");
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, (UnixFileMode)mode);
        Assert.That(() => ClusterKeyFile.Load(path), Throws.TypeOf<ClusterKeyException>().With.Message.StartsWith(path).And.Message.Contains(expected));
        Assert.That(ClusterKeyFile.Problem(path), Does.StartWith(path).And.Contain(expected));
    }

    [Test]
    public void A_missing_file_or_a_directory_is_refused()
    {
        var missing = TestKeys.ScratchPath("missing.key");
        Assert.That(ClusterKeyFile.Problem(missing), Does.Contain($"{missing} does not exist; create it with: swapnbd-daemon keygen {missing}"));
        var directory = TestKeys.ScratchPath($"dir-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        Assert.That(ClusterKeyFile.Problem(directory), Does.Contain($"{directory} is a directory"));
        Assert.That(ClusterKeyFile.Problem(TestKeys.File), Is.Null, "the run's key is fine");
    }

    [Test]
    public void A_symbolic_link_is_judged_by_the_file_it_leads_to()
    {
        // As a Kubernetes Secret volume lays a key out: KEY -> ..data/KEY, ..data -> ..TIMESTAMP (deploy/kubernetes).
        var (link, file) = SecretVolume.Create(TestKeys.ScratchPath($"volume-{Guid.NewGuid():N}"), "cluster.key", UnixFileMode.UserRead);
        Assert.That(ClusterKeyFile.Problem(link), Is.Null, "a link to a 0400 key file");

        File.SetUnixFileMode(file, OwnerOnly | UnixFileMode.GroupRead);
        Assert.That(ClusterKeyFile.Problem(link), Does.StartWith(link).And.Contain("(mode 0640); run: chmod 600"), "the mode is the file's, not the link's");

        var dangling = TestKeys.ScratchPath($"dangling-{Guid.NewGuid():N}.key");
        File.CreateSymbolicLink(dangling, TestKeys.ScratchPath("nowhere.key"));
        Assert.That(ClusterKeyFile.Problem(dangling), Does.Contain($"{dangling} does not exist"));

        var loop = TestKeys.ScratchPath($"loop-{Guid.NewGuid():N}.key");
        File.CreateSymbolicLink(loop, loop);
        Assert.That(ClusterKeyFile.Problem(loop), Does.StartWith($"{loop} is a symbolic link that cannot be followed"));
    }
}
