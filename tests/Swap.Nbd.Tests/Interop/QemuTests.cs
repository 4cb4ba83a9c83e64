using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests.Interop;

/// <summary>qemu's NBD client (qemu-img, qemu-io) against the real server.</summary>
[Category(Tier.Interop)]
public sealed class QemuTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Test, CancelAfter(60_000)]
    public async Task Qemu_img_convert_then_compare(CancellationToken ct)
    {
        const long size = 32L << 20;
        await using var server = TestServer.Start(size: size);
        var image = Path.Combine(server.Directory, "image.raw");
        var data = new byte[size];
        var random = new Random(11);
        // Data with holes in between, so qemu-img's zero detection and sparse writes are exercised too.
        for (var offset = 0; offset < size; offset += 1 << 20)
        {
            if ((offset >> 20) % 3 != 1)
            {
                random.NextBytes(data.AsSpan(offset, 1 << 20));
            }
        }

        await File.WriteAllBytesAsync(image, data, ct);

        var convert = await ExternalTool.RunAsync("qemu-img", "qemu-utils", ["convert", "-n", "-f", "raw", "-O", "raw", image, server.TcpUri], Timeout, ct);
        Assert.That(convert.ExitCode, Is.Zero, convert.ToString());
        var compare = await ExternalTool.RunAsync("qemu-img", "qemu-utils", ["compare", "-f", "raw", "-F", "raw", image, server.TcpUri], Timeout, ct);
        Assert.That(compare.ExitCode, Is.Zero, compare.ToString());
        Assert.That(compare.Stdout, Does.Contain("Images are identical"), compare.ToString());

        // And the device really holds the bytes (qemu-img compare reads through the same server).
        var back = new byte[size];
        Assert.That(server.Device.TryRead(0, back), Is.True);
        Assert.That(back, Is.EqualTo(data), "device content equals the image");
    }

    [Test, CancelAfter(30_000)]
    public async Task Qemu_io_write_and_read_pattern(CancellationToken ct)
    {
        await using var server = TestServer.Start();

        var result = await ExternalTool.RunAsync("qemu-io", "qemu-utils",
            ["-f", "raw", server.TcpUri, "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M", "-c", "read -P 0 1M 1M"], Timeout, ct);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Stdout, Does.Contain("wrote 1048576/1048576 bytes at offset 0"), result.ToString());
            Assert.That(result.Stdout, Does.Contain("read 1048576/1048576 bytes at offset 0"), result.ToString());
            Assert.That(result.Stdout, Does.Contain("read 1048576/1048576 bytes at offset 1048576"), result.ToString());
            Assert.That(result.Stdout + result.Stderr, Does.Not.Contain("failed").IgnoreCase, result.ToString());
        });
    }
}
