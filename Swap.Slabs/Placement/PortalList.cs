using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Swap.Slabs.Placement;

/// <summary>Reads portal.list, the list of donor daemons, in Infiniswap's format: a count line, then one HOST:PORT a line.</summary>
/// <remarks>
/// Beyond Infiniswap's format: '#' comments (whole line or trailing), blank lines, surrounding whitespace,
/// bracketed IPv6 addresses ("[::1]:9400") and host names. The count must match the entries, duplicates are refused.
/// </remarks>
public static class PortalList
{
    public static IReadOnlyList<PortalEntry> Parse(string text, string sourceName = "portal.list")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(sourceName);

        var countLine = 0;
        var declared = 0;
        var entries = new List<PortalEntry>();
        var lineNumber = 0;
        foreach (var rawLine in text.AsSpan().EnumerateLines())
        {
            lineNumber++;
            var line = rawLine;
            var hash = line.IndexOf('#');
            if (hash >= 0)
            {
                line = line[..hash];
            }

            line = line.Trim();
            if (line.IsEmpty)
            {
                continue;
            }

            if (countLine == 0)
            {
                countLine = lineNumber;
                declared = ParseCount(line, sourceName, lineNumber);
                continue;
            }

            var entry = ParseEntry(line, sourceName, lineNumber);
            foreach (var earlier in entries)
            {
                if (SameDaemon(earlier, entry))
                {
                    Fail(sourceName, lineNumber, $"{entry} is listed twice (first on line {earlier.Line})");
                }
            }

            entries.Add(entry);
        }

        if (countLine == 0)
        {
            Fail(sourceName, 0, "no daemons listed (expected the number of daemons on the first line, then one HOST:PORT a line)");
        }

        if (entries.Count == 0)
        {
            Fail(sourceName, countLine, $"the count is {declared} but no daemon follows; list at least one HOST:PORT, one a line");
        }

        if (declared != entries.Count)
        {
            var says = declared == 1 ? "1 daemon" : $"{declared} daemons";
            var listed = entries.Count == 1 ? "1 is" : $"{entries.Count} are";
            Fail(sourceName, countLine, $"the count says {says} but {listed} listed; make the count {entries.Count}");
        }

        return entries.AsReadOnly();
    }

    public static IReadOnlyList<PortalEntry> Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new PortalListException($"{path}: cannot read the list of daemons ({ex.Message})", 0, ex);
        }

        return Parse(text, path);
    }

    private static int ParseCount(ReadOnlySpan<char> line, string sourceName, int lineNumber)
    {
        if (!int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            Fail(sourceName, lineNumber, $"'{line}' is not the number of daemons (the first line must be the count, e.g. 3, then one HOST:PORT a line)");
        }

        return count;
    }

    private static PortalEntry ParseEntry(ReadOnlySpan<char> line, string sourceName, int lineNumber)
    {
        string? host = null;
        ReadOnlySpan<char> port = default;
        if (line.StartsWith('['))
        {
            var close = line.IndexOf("]:", StringComparison.Ordinal);
            if (close > 1
                && IPAddress.TryParse(line[1..close], out var v6)
                && v6.AddressFamily == AddressFamily.InterNetworkV6)
            {
                host = line[1..close].ToString();
                port = line[(close + 2)..];
            }
        }
        else
        {
            var colon = line.LastIndexOf(':');
            if (colon > 0 && line[..colon].IndexOf(':') < 0 && IsHostName(line[..colon]))
            {
                host = line[..colon].ToString();
                port = line[(colon + 1)..];
            }
            else if (colon > 0 && line[..colon].IndexOf(':') >= 0)
            {
                Fail(sourceName, lineNumber, $"'{line}' is not HOST:PORT (write an IPv6 address in brackets, e.g. [::1]:9400)");
            }
        }

        if (host is null
            || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            || number is < 1 or > 65535)
        {
            Fail(sourceName, lineNumber, $"'{line}' is not HOST:PORT (port must be 1-65535)");
            return default;
        }

        return new PortalEntry(host, number, lineNumber);
    }

    // Host names and IPv4 addresses: RFC 1123 labels; anything with spaces, slashes or other punctuation is a typo.
    private static bool IsHostName(ReadOnlySpan<char> host)
    {
        if (host.Length > 253)
        {
            return false;
        }

        foreach (var range in host.Split('.'))
        {
            var label = host[range];
            if (label.IsEmpty || label.Length > 63 || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static bool SameDaemon(PortalEntry a, PortalEntry b)
    {
        if (a.Port != b.Port)
        {
            return false;
        }

        // "::1" and "0:0:0:0:0:0:0:1" are the same daemon; host names compare without case.
        return IPAddress.TryParse(a.Host, out var x) && IPAddress.TryParse(b.Host, out var y)
            ? x.Equals(y)
            : string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase);
    }

    [DoesNotReturn]
    private static void Fail(string sourceName, int line, string message) =>
        throw new PortalListException(line > 0 ? $"{sourceName} line {line}: {message}" : $"{sourceName}: {message}", line);
}
