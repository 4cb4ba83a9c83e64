using NUnit.Framework;
using Swap.Nbd.Client;

namespace Swap.Nbd.Tests.Client;

[Category(Tier.Unit)]
public sealed class NbdUriTests
{
    [TestCase("nbd://127.0.0.1:10810/swap", "127.0.0.1", 10810, "swap")]
    [TestCase("nbd://localhost/", "localhost", 10809, "")]
    [TestCase("nbd://localhost", "localhost", 10809, "")]
    [TestCase("NBD://example.org:1/a%20b%2Fc", "example.org", 1, "a b/c")]
    [TestCase("nbd://[::1]:12345/x", "::1", 12345, "x")]
    [TestCase("nbd://[fe80::1]/", "fe80::1", 10809, "")]
    [TestCase("nbd://h/%C3%A9t%C3%A9", "h", 10809, "été")]
    [TestCase("nbd://h/a/b", "h", 10809, "a/b")]
    public void Parses_tcp_uris(string text, string host, int port, string export)
    {
        var uri = NbdUri.Parse(text);
        Assert.Multiple(() =>
        {
            Assert.That(uri.Transport, Is.EqualTo(NbdTransport.Tcp));
            Assert.That(uri.Host, Is.EqualTo(host));
            Assert.That(uri.Port, Is.EqualTo(port));
            Assert.That(uri.ExportName, Is.EqualTo(export));
            Assert.That(uri.SocketPath, Is.Null);
        });
    }

    [TestCase("nbd+unix:///?socket=/tmp/nbd.sock", "/tmp/nbd.sock", "")]
    [TestCase("nbd+unix:///swap?socket=/run/a%20b.sock", "/run/a b.sock", "swap")]
    [TestCase("nbd+unix://?socket=/s", "/s", "")]
    public void Parses_unix_uris(string text, string socket, string export)
    {
        var uri = NbdUri.Parse(text);
        Assert.Multiple(() =>
        {
            Assert.That(uri.Transport, Is.EqualTo(NbdTransport.Unix));
            Assert.That(uri.SocketPath, Is.EqualTo(socket));
            Assert.That(uri.ExportName, Is.EqualTo(export));
            Assert.That(uri.Host, Is.Null);
        });
    }

    [TestCase("", "expected nbd://")]
    [TestCase("127.0.0.1:10809", "expected nbd://")]
    [TestCase("http://host/", "unknown scheme 'http'")]
    [TestCase("nbds://host/", "not supported")]
    [TestCase("nbd:///export", "missing host")]
    [TestCase("nbd://host:0/", "port '0'")]
    [TestCase("nbd://host:65536/", "port '65536'")]
    [TestCase("nbd://host:abc/", "port 'abc'")]
    [TestCase("nbd://::1/", "must be in brackets")]
    [TestCase("nbd://[::1/", "unterminated '['")]
    [TestCase("nbd://[127.0.0.1]/", "not an IPv6 address")]
    [TestCase("nbd://[::1]x/", "expected ':PORT'")]
    [TestCase("nbd://user@host/", "user names")]
    [TestCase("nbd://host/%zz", "bad percent escape")]
    [TestCase("nbd://host/%C3", "not valid UTF-8")]
    [TestCase("nbd://host/#frag", "fragments")]
    [TestCase("nbd://host/?socket=/x", "only valid with nbd+unix")]
    [TestCase("nbd+unix:///", "needs ?socket=PATH")]
    [TestCase("nbd+unix:///?socket=", "needs ?socket=PATH")]
    [TestCase("nbd+unix://host/?socket=/x", "takes no host")]
    [TestCase("nbd+unix:///?socket=/x&tls=on", "unknown query parameter 'tls'")]
    [TestCase("nbd+unix:///?socket=/x&socket=/y", "given twice")]
    public void Rejects_bad_uris_with_a_clear_message(string text, string reason)
    {
        var ex = Assert.Throws<NbdUriException>(() => NbdUri.Parse(text));
        Assert.That(ex!.Message, Does.StartWith($"invalid NBD URI '{text}': ").And.Contain(reason));
        Assert.That(NbdUri.TryParse(text, out var uri), Is.False);
        Assert.That(uri, Is.Null);
    }

    [TestCase("nbd://127.0.0.1:10809/a%20b")]
    [TestCase("nbd://[::1]:5/x")]
    [TestCase("nbd+unix:///e?socket=%2Ftmp%2Fs")]
    public void ToString_round_trips(string text)
    {
        var uri = NbdUri.Parse(text);
        var again = NbdUri.Parse(uri.ToString());
        Assert.That((again.Transport, again.Host, again.Port, again.SocketPath, again.ExportName),
            Is.EqualTo((uri.Transport, uri.Host, uri.Port, uri.SocketPath, uri.ExportName)));
        Assert.That(uri.ToString(), Is.EqualTo(text));
    }
}
