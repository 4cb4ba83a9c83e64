using System.Diagnostics;
using System.Globalization;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// What a guest needs to run SwapNbd as its whole machine's swap (scripts/kernel/guests/whole-machine.sh): the native
/// out/swapnbd-server and out/swapnbd-client with the libraries ldd lists for them and the OpenSSL libraries the server
/// loads at run time (sealing), swap-attach.sh/swap-detach.sh, the run's cluster key (mode 0600), a sparse backup disk
/// on the host given to the guest as its first virtio disk, and a forward per donor daemon on host loopback.
/// </summary>
internal static class WholeMachineGuest
{
    // NativeAOT's System.Security.Cryptography.Native dlopens these (ldd cannot see them); libssl needs libcrypto.
    private static readonly string[] OpenSsl = ["libssl.so.3", "libcrypto.so.3"];

    /// <summary>run-guest.sh options: --file for every binary, library and script, --disk, one --forward per daemon.</summary>
    public static List<string> RunGuestArgs(string backupDisk, IEnumerable<TestDaemon> daemons)
    {
        var server = OutBinary.Path("swapnbd-server");
        var client = OutBinary.Path("swapnbd-client");
        var args = new List<string>
        {
            "--file", server + ":/usr/bin/swapnbd-server",
            "--file", client + ":/usr/bin/swapnbd-client",
            "--file", Repo.Path("scripts", "swap-attach.sh") + ":/usr/bin/swap-attach.sh",
            "--file", Repo.Path("scripts", "swap-detach.sh") + ":/usr/bin/swap-detach.sh",
            "--file", TestKeys.File + ":/etc/swapnbd/cluster.key",
            "--disk", backupDisk,
        };
        var libraries = new SortedSet<string>(StringComparer.Ordinal);
        libraries.UnionWith(Ldd(server));
        libraries.UnionWith(Ldd(client));
        foreach (var name in OpenSsl)
        {
            var path = FindLibrary(name);
            libraries.Add(path);
            libraries.UnionWith(Ldd(path));
        }

        foreach (var library in libraries)
        {
            // The file itself at the path the loader looks in: run-guest.sh copies with cp -a, which would carry a symlink
            // (/lib64/ld-linux-x86-64.so.2 is one) whose target is not in the guest, over the base initramfs's real file.
            var real = File.ResolveLinkTarget(library, returnFinalTarget: true)?.FullName ?? library;
            args.AddRange(["--file", real + ":" + library]);
        }

        foreach (var daemon in daemons)
        {
            args.AddRange(["--forward", daemon.Port.ToString(CultureInfo.InvariantCulture)]);
        }

        return args;
    }

    /// <summary>The daemons as the guest's portal names them: 10.0.2.100:PORT (qemu forwards each to host loopback).</summary>
    public static string Portal(IEnumerable<TestDaemon> daemons) =>
        string.Join(' ', daemons.Select(d => "10.0.2.100:" + d.Port.ToString(CultureInfo.InvariantCulture)));

    /// <summary>A sparse file of <paramref name="size"/> bytes for the guest's backup disk.</summary>
    public static string CreateBackupDisk(string directory, long size)
    {
        var path = Path.Combine(directory, "guest-backup.img");
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        file.SetLength(size);
        return path;
    }

    /// <summary>
    /// A qemu blkdebug rule file (run-guest.sh --blkdebug): every write that touches one of <paramref name="offsets"/>
    /// fails with EIO, every time, as a drive with bad sectors does; reads and all other writes go through.
    /// </summary>
    public static string FailingWrites(string directory, IEnumerable<long> offsets)
    {
        var path = Path.Combine(directory, "blkdebug.cfg");
        var rules = new System.Text.StringBuilder();
        foreach (var offset in offsets)
        {
            // raw's write path raises the write_aio event; sector is in 512-byte units; the rule stays (once = off).
            rules.Append(CultureInfo.InvariantCulture, $"[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\nsector = \"{offset / 512}\"\nonce = \"off\"\n\n");
        }

        File.WriteAllText(path, rules.ToString());
        return path;
    }

    private static List<string> Ldd(string binary)
    {
        var start = new ProcessStartInfo("ldd", [binary]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot run ldd");
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, $"ldd {binary} failed: {process.StandardError.ReadToEnd()}");
        // "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
        return output.Split('\n')
            .SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Where(w => w.StartsWith('/'))
            .ToList();
    }

    private static string FindLibrary(string name)
    {
        string[] directories = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
        var found = directories.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
        Assert.That(found, Is.Not.Null, $"{name} not found in {string.Join(", ", directories)}: install libssl3 (scripts/setup.sh)");
        return found!;
    }
}
