using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Swap.Common.Units;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client.Cli;

/// <summary><c>swapnbd-client info URI [--list] [--json]</c>: what nbdinfo shows, from OPT_INFO or OPT_LIST.</summary>
internal static class InfoCommand
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, CancellationToken ct)
    {
        var line = new CommandLine("info", args, [], ["list", "json", "no-structured"]);
        if (line.Positionals.Count != 1)
        {
            throw new CliUsageException(line.Positionals.Count == 0 ? "info: missing URI" : "info: expected exactly one URI");
        }

        var uri = NbdUri.Parse(line.Positionals[0]);
        var options = new NbdClientOptions { StructuredReplies = !line.Has("no-structured") };
        var json = line.Has("json");
        if (line.Has("list"))
        {
            var exports = await NbdNegotiator.ListExportsAsync(uri, options, ct).ConfigureAwait(false);
            await stdout.WriteAsync(json ? ListJson(exports) : ListText(exports)).ConfigureAwait(false);
            return ClientCli.ExitOk;
        }

        var negotiation = await NbdNegotiator.QueryInfoAsync(uri, options, ct).ConfigureAwait(false);
        await stdout.WriteAsync(json ? InfoJson(uri, negotiation) : InfoText(uri, negotiation)).ConfigureAwait(false);
        return ClientCli.ExitOk;
    }

    /// <summary>Flag names as nbdinfo and the spec spell them (NBD_FLAG_SEND_FUA → send_fua).</summary>
    public static IEnumerable<string> FlagNames(NbdTransmissionFlags flags)
    {
        for (var bit = 0; bit < 16; bit++)
        {
            var flag = (NbdTransmissionFlags)(1 << bit);
            if (!flags.HasFlag(flag))
            {
                continue;
            }

            yield return Enum.IsDefined(flag) ? SnakeCase(flag.ToString()) : string.Create(CultureInfo.InvariantCulture, $"bit{bit}");
        }
    }

    private static string InfoText(NbdUri uri, NbdNegotiation n)
    {
        var e = n.Export;
        var s = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        s.AppendLine(inv, $"uri: {uri}");
        s.AppendLine(inv, $"export: \"{e.Name}\"");
        if (e.Description is not null)
        {
            s.AppendLine(inv, $"description: {e.Description}");
        }

        s.AppendLine(inv, $"size: {e.Size} ({ByteSize.FormatApproximate(e.Size)})");
        s.AppendLine(inv, $"flags: 0x{(ushort)e.Flags:x4} {string.Join(' ', FlagNames(e.Flags))}");
        s.AppendLine(inv, $"block size: minimum {e.MinimumBlockSize}, preferred {e.PreferredBlockSize}, maximum {e.MaximumPayload}{(e.BlockSizeAdvertised ? string.Empty : " (not advertised; spec defaults)")}");
        s.AppendLine(inv, $"structured replies: {(n.StructuredReplies ? "yes" : "no")}");
        s.AppendLine(inv, $"base:allocation: {(n.BaseAllocationContextId is null ? "no" : "yes")}");
        if (n.UsedExportName)
        {
            s.AppendLine("note: server does not support OPT_INFO/OPT_GO; used OPT_EXPORT_NAME");
        }

        return s.ToString();
    }

    private static string InfoJson(NbdUri uri, NbdNegotiation n)
    {
        var e = n.Export;
        return Json(w =>
        {
            w.WriteString("uri", uri.ToString());
            w.WriteString("export", e.Name);
            w.WriteString("description", e.Description);
            w.WriteNumber("size", e.Size);
            w.WriteNumber("flags", (ushort)e.Flags);
            w.WriteStartArray("flag_names");
            foreach (var name in FlagNames(e.Flags))
            {
                w.WriteStringValue(name);
            }

            w.WriteEndArray();
            w.WriteNumber("block_size_minimum", e.MinimumBlockSize);
            w.WriteNumber("block_size_preferred", e.PreferredBlockSize);
            w.WriteNumber("block_size_maximum", e.MaximumPayload);
            w.WriteBoolean("block_size_advertised", e.BlockSizeAdvertised);
            w.WriteBoolean("structured_replies", n.StructuredReplies);
            w.WriteBoolean("base_allocation", n.BaseAllocationContextId is not null);
        });
    }

    private static string ListText(IReadOnlyList<NbdExportListing> exports)
    {
        var s = new StringBuilder();
        foreach (var export in exports)
        {
            s.AppendLine(CultureInfo.InvariantCulture, $"export: \"{export.Name}\"{(export.Description.Length > 0 ? "  description: " + export.Description : string.Empty)}");
        }

        if (exports.Count == 0)
        {
            s.AppendLine("no exports listed");
        }

        return s.ToString();
    }

    private static string ListJson(IReadOnlyList<NbdExportListing> exports) => Json(w =>
    {
        w.WriteStartArray("exports");
        foreach (var export in exports)
        {
            w.WriteStartObject();
            w.WriteString("name", export.Name);
            w.WriteString("description", export.Description);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    });

    internal static string Json(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + Environment.NewLine;
    }

    private static string SnakeCase(string name)
    {
        var s = new StringBuilder();
        foreach (var c in name)
        {
            if (char.IsUpper(c) && s.Length > 0)
            {
                s.Append('_');
            }

            s.Append(char.ToLowerInvariant(c));
        }

        return s.ToString();
    }
}
