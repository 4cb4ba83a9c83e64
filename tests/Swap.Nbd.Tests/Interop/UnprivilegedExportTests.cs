using System.Runtime.Versioning;
using System.Text;
using NUnit.Framework;
using Swap.BlockDevices;
using Swap.Common.Hosting;
using Swap.Nbd.Server.Hosting;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>
/// The first door of issue 13, closed: a local user who is not the server's cannot connect to the export's socket,
/// so reads nothing of the swapped pages, with libnbd's own tools run as nobody. Root (the kernel's side) still can.
/// </summary>
[Category(Tier.Interop)]
[SupportedOSPlatform("linux")]
public sealed class UnprivilegedExportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly string[] AsNobody = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];

    [Test, CancelAfter(120_000)]
    public async Task Nobody_can_neither_connect_nor_read_and_root_can(CancellationToken ct)
    {
        if (PrivateDirectoryNative.EffectiveUserId() != 0)
        {
            Assert.Ignore("needs root: the server runs as root and the client as nobody");
        }

        // A base directory everyone may enter: whatever keeps nobody out is what the server created in it.
        var root = Directory.CreateTempSubdirectory("swapnbd-nobody-").FullName;
        File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var socket = Path.Combine(root, "swapnbd", "swapnbd.sock");
        var uri = $"nbd+unix:///?socket={socket}";
        var secret = Encoding.ASCII.GetBytes("SECRET-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var device = new SparseMemoryDevice(1 << 20);
            await using var server = new NbdServer(new NbdServerOptions { Socket = socket }, device);
            server.Start();
            await using (var writer = await RawNbdClient.ConnectUnixAsync(socket, ct))
            {
                await writer.HandshakeAsync(ct);
                var page = new byte[4096];
                secret.CopyTo(page, 0);
                await writer.WriteAsync(0, page, ct);
            }

            var control = await ExternalTool.RunAsync("setpriv", "util-linux", [.. AsNobody, "/bin/sh", "-c", $"test -x {root} && test -r {root} && ls {root}"], Timeout, ct);
            Assert.That((control.ExitCode, control.Stdout.Trim()), Is.EqualTo((0, "swapnbd")), $"nobody can reach the base directory\n{control}");

            var accepted = server.AcceptedConnections;
            var info = await ExternalTool.RunAsync("setpriv", "util-linux", [.. AsNobody, "nbdinfo", uri], Timeout, ct);
            Assert.That(info.ExitCode, Is.Not.Zero, info.ToString());
            Assert.That(info.Stderr, Does.Contain("Permission denied"), info.ToString());

            var copy = await ExternalTool.RunAsync("setpriv", "util-linux", [.. AsNobody, "nbdcopy", uri, "-"], Timeout, ct);
            Assert.That(copy.ExitCode, Is.Not.Zero, copy.ToString());
            Assert.That(copy.Stderr, Does.Contain("Permission denied"), copy.ToString());
            Assert.That(copy.Stdout, Is.Empty, "not a byte of the device");
            Assert.That(server.AcceptedConnections, Is.EqualTo(accepted), "the server never even saw a connection from nobody");

            var image = Path.Combine(root, "copy.img");
            var rootCopy = await ExternalTool.RunAsync("nbdcopy", "libnbd-bin", [uri, image], Timeout, ct);
            Assert.That(rootCopy.ExitCode, Is.Zero, rootCopy.ToString());
            Assert.That(File.ReadAllBytes(image).AsSpan(0, secret.Length).SequenceEqual(secret), "root reads the page through the same socket");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
