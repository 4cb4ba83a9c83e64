using System.Globalization;
using System.Net;
using System.Text;

namespace Swap.Nbd.Client;

/// <summary>
/// A libnbd-style NBD URI: <c>nbd://HOST[:PORT]/[EXPORT]</c> or <c>nbd+unix:///[EXPORT]?socket=PATH</c>.
/// </summary>
public sealed class NbdUri
{
    public const int DefaultPort = 10809;

    private NbdUri(NbdTransport transport, string? host, int port, string? socketPath, string exportName)
    {
        Transport = transport;
        Host = host;
        Port = port;
        SocketPath = socketPath;
        ExportName = exportName;
    }

    public NbdTransport Transport { get; }

    /// <summary>Host name or address (IPv6 without brackets); null for Unix sockets.</summary>
    public string? Host { get; }

    /// <summary>TCP port; 0 for Unix sockets.</summary>
    public int Port { get; }

    /// <summary>Unix socket path; null for TCP.</summary>
    public string? SocketPath { get; }

    /// <summary>Export name, percent-decoded; "" asks for the server's default export.</summary>
    public string ExportName { get; }

    /// <summary>Where the server is, for messages: <c>HOST:PORT</c> or <c>unix:PATH</c>.</summary>
    public string Endpoint => Transport == NbdTransport.Tcp
        ? (Host!.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}")
        : $"unix:{SocketPath}";

    public static NbdUri Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var schemeEnd = text.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0)
        {
            Fail(text, "expected nbd://HOST[:PORT]/[EXPORT] or nbd+unix:///[EXPORT]?socket=PATH");
        }

        var scheme = text[..schemeEnd].ToLowerInvariant();
        var rest = text[(schemeEnd + 3)..];
        if (rest.Contains('#', StringComparison.Ordinal))
        {
            Fail(text, "fragments ('#') are not allowed");
        }

        var queryStart = rest.IndexOf('?', StringComparison.Ordinal);
        var query = queryStart < 0 ? null : rest[(queryStart + 1)..];
        var beforeQuery = queryStart < 0 ? rest : rest[..queryStart];
        var pathStart = beforeQuery.IndexOf('/', StringComparison.Ordinal);
        var authority = pathStart < 0 ? beforeQuery : beforeQuery[..pathStart];
        var path = pathStart < 0 ? string.Empty : beforeQuery[(pathStart + 1)..];
        var exportName = Decode(text, path, "export name");
        if (Encoding.UTF8.GetByteCount(exportName) > 4096 || exportName.Contains('\0', StringComparison.Ordinal))
        {
            Fail(text, "the export name must be at most 4096 bytes and contain no NUL");
        }

        var socket = ParseQuery(text, query);
        switch (scheme)
        {
            case "nbd":
                if (socket is not null)
                {
                    Fail(text, "socket= is only valid with nbd+unix://");
                }

                var (host, port) = ParseAuthority(text, authority);
                return new NbdUri(NbdTransport.Tcp, host, port, null, exportName);

            case "nbd+unix":
                if (authority.Length != 0)
                {
                    Fail(text, "nbd+unix:// takes no host; write nbd+unix:///EXPORT?socket=PATH");
                }

                if (string.IsNullOrEmpty(socket))
                {
                    Fail(text, "nbd+unix:// needs ?socket=PATH");
                }

                return new NbdUri(NbdTransport.Unix, null, 0, socket, exportName);

            case "nbds" or "nbds+unix" or "nbds+vsock" or "nbd+vsock":
                Fail(text, $"scheme '{scheme}' is not supported (no TLS or vsock); use nbd:// or nbd+unix://");
                break;
        }

        Fail(text, $"unknown scheme '{scheme}'; use nbd:// or nbd+unix://");
        return null;
    }

    public static bool TryParse(string text, out NbdUri? uri)
    {
        try
        {
            uri = Parse(text);
            return true;
        }
        catch (NbdUriException)
        {
            uri = null;
            return false;
        }
    }

    public override string ToString()
    {
        var export = Uri.EscapeDataString(ExportName);
        return Transport == NbdTransport.Tcp
            ? $"nbd://{(Host!.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}/{export}"
            : $"nbd+unix:///{export}?socket={Uri.EscapeDataString(SocketPath!)}";
    }

    private static (string Host, int Port) ParseAuthority(string text, string authority)
    {
        if (authority.Length == 0)
        {
            Fail(text, "missing host; write nbd://HOST[:PORT]/[EXPORT]");
        }

        if (authority.Contains('@', StringComparison.Ordinal))
        {
            Fail(text, "user names ('user@host') are not supported");
        }

        string host;
        string? portText = null;
        if (authority[0] == '[')
        {
            var close = authority.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                Fail(text, "unterminated '[' in an IPv6 address");
            }

            host = authority[1..close];
            if (!IPAddress.TryParse(host, out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                Fail(text, $"'{host}' is not an IPv6 address");
            }

            var after = authority[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    Fail(text, "expected ':PORT' after ']'");
                }

                portText = after[1..];
            }
        }
        else
        {
            var colon = authority.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0 && authority.IndexOf(':', colon + 1) >= 0)
            {
                Fail(text, "an IPv6 address must be in brackets, e.g. nbd://[::1]:10809/");
            }

            host = colon < 0 ? authority : authority[..colon];
            portText = colon < 0 ? null : authority[(colon + 1)..];
            if (host.Length == 0)
            {
                Fail(text, "missing host before ':'");
            }
        }

        var port = DefaultPort;
        if (portText is not null &&
            (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            Fail(text, $"port '{portText}' is not a number from 1 to 65535");
        }

        return (host, port);
    }

    private static string? ParseQuery(string text, string? query)
    {
        if (string.IsNullOrEmpty(query))
        {
            return null;
        }

        string? socket = null;
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var key = Decode(text, eq < 0 ? part : part[..eq], "query key");
            var value = eq < 0 ? string.Empty : Decode(text, part[(eq + 1)..], "query value");
            if (key != "socket")
            {
                Fail(text, $"unknown query parameter '{key}' (only socket= is supported)");
            }

            if (socket is not null)
            {
                Fail(text, "socket= given twice");
            }

            socket = value;
        }

        return socket;
    }

    /// <summary>Percent-decodes to UTF-8, rejecting malformed escapes that Uri.UnescapeDataString would let through.</summary>
    private static string Decode(string text, string encoded, string what)
    {
        if (!encoded.Contains('%', StringComparison.Ordinal))
        {
            return encoded;
        }

        var bytes = new List<byte>(encoded.Length);
        for (var i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] != '%')
            {
                // Whole runs, so surrogate pairs are encoded together.
                var next = encoded.IndexOf('%', i);
                var run = next < 0 ? encoded[i..] : encoded[i..next];
                bytes.AddRange(Encoding.UTF8.GetBytes(run));
                i += run.Length - 1;
                continue;
            }

            var b = (byte)0;
            if (i + 2 >= encoded.Length ||
                !byte.TryParse(encoded.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b))
            {
                Fail(text, $"bad percent escape in the {what}");
            }

            bytes.Add(b);
            i += 2;
        }

        try
        {
            return StrictUtf8.GetString(bytes.ToArray());
        }
        catch (DecoderFallbackException)
        {
            Fail(text, $"the {what} is not valid UTF-8 after percent-decoding");
            return null;
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string text, string reason) => throw new NbdUriException($"invalid NBD URI '{text}': {reason}");

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
