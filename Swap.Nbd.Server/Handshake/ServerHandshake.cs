using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Transport;

namespace Swap.Nbd.Server.Handshake;

/// <summary>
/// The fixed-newstyle handshake of one connection: greets the client, haggles options and returns the negotiated
/// <see cref="NbdSession"/>, or null when the client does not go on to transmission.
/// </summary>
internal sealed class ServerHandshake(PipeReader input, PipeWriter output, NbdExport export, NbdServerState state, long connectionId, ILogger logger)
{
    /// <summary>Option data longer than this is not buffered: it is skipped and answered ERR_TOO_BIG.</summary>
    internal const int MaxOptionLength = 64 * 1024;
    /// <summary>Option data longer than this is treated as an attack and the connection is closed.</summary>
    internal const int MaxSkippableOptionLength = 16 * 1024 * 1024;
    /// <summary>More options than this in one handshake closes the connection (nbdkit uses 32).</summary>
    internal const int MaxOptions = 64;
    private const string BaseAllocation = "base:allocation";

    private bool _noZeroes;
    private bool _structuredReplies;
    private bool _metaContextSelected;

    /// <summary>Runs option haggling within <paramref name="timeout"/>; the session when the client asked for
    /// transmission, null when it aborted, the server is stopping or the time ran out.</summary>
    public async Task<NbdSession?> RunAsync(TimeSpan timeout, TimeProvider time, CancellationToken aborted)
    {
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, aborted);
        try
        {
            return await NegotiateAsync(linked.Token).ConfigureAwait(false)
                ? new NbdSession(export, _structuredReplies, _noZeroes, _metaContextSelected)
                : null;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            ConnectionLog.HandshakeTimeout(logger, connectionId, timeout);
            return null;
        }
    }

    private async Task<bool> NegotiateAsync(CancellationToken ct)
    {
        var scratch = new byte[NbdOptionHeader.Size];
        NbdHandshake.WriteGreeting(output.GetSpan(NbdHandshake.GreetingSize), NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        output.Advance(NbdHandshake.GreetingSize);
        await output.FlushOrThrowAsync(ct).ConfigureAwait(false);

        await input.ReadExactAsync(scratch.AsMemory(0, NbdHandshake.ClientFlagsSize), ct).ConfigureAwait(false);
        NbdHandshake.TryReadClientFlags(scratch, out var clientFlags);
        if ((clientFlags & ~(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes)) != 0)
        {
            NbdProtocolException.Throw($"client sent unknown handshake flags 0x{(uint)clientFlags:x}");
        }

        _noZeroes = clientFlags.HasFlag(NbdClientFlags.NoZeroes);

        for (var count = 0; ; count++)
        {
            await input.ReadExactAsync(scratch.AsMemory(0, NbdOptionHeader.Size), ct).ConfigureAwait(false);
            NbdOptionCodec.TryReadHeader(scratch, out var header);
            if (count >= MaxOptions)
            {
                NbdProtocolException.Throw($"more than {MaxOptions} options in one handshake");
            }

            if (header.Length > MaxOptionLength)
            {
                if (header.Length > MaxSkippableOptionLength || header.Option == NbdOption.ExportName)
                {
                    NbdProtocolException.Throw($"option {header.Option} with {header.Length} bytes of data");
                }

                await input.DiscardAsync(header.Length, ct).ConfigureAwait(false);
                await ReplyOptionAsync(header.Option, NbdOptionReplyType.ErrTooBig, "option data too long", ct).ConfigureAwait(false);
                continue;
            }

            var data = new byte[header.Length];
            await input.ReadExactAsync(data, ct).ConfigureAwait(false);

            if (state.IsStopping && header.Option != NbdOption.Abort)
            {
                if (header.Option == NbdOption.ExportName)
                {
                    return false;
                }

                await ReplyOptionAsync(header.Option, NbdOptionReplyType.ErrShutdown, "server is shutting down", ct).ConfigureAwait(false);
                continue;
            }

            switch (header.Option)
            {
                case NbdOption.ExportName:
                    return await ExportNameAsync(data, ct).ConfigureAwait(false);
                case NbdOption.Abort:
                    await ReplyOptionAsync(header.Option, NbdOptionReplyType.Ack, null, ct).ConfigureAwait(false);
                    return false;
                case NbdOption.List:
                    await ListAsync(data, ct).ConfigureAwait(false);
                    break;
                case NbdOption.StartTls:
                    await ReplyOptionAsync(header.Option, data.Length == 0 ? NbdOptionReplyType.ErrPolicy : NbdOptionReplyType.ErrInvalid,
                        "TLS is not configured on this server", ct).ConfigureAwait(false);
                    break;
                case NbdOption.Info:
                case NbdOption.Go:
                    if (await InfoAsync(header.Option, data, ct).ConfigureAwait(false) && header.Option == NbdOption.Go)
                    {
                        return true;
                    }

                    break;
                case NbdOption.StructuredReply:
                    await StructuredReplyAsync(data, ct).ConfigureAwait(false);
                    break;
                case NbdOption.ListMetaContext:
                case NbdOption.SetMetaContext:
                    await MetaContextAsync(header.Option, data, ct).ConfigureAwait(false);
                    break;
                default:
                    await ReplyOptionAsync(header.Option, NbdOptionReplyType.ErrUnsup, "option not supported", ct).ConfigureAwait(false);
                    break;
            }
        }
    }

    private async Task<bool> ExportNameAsync(byte[] data, CancellationToken ct)
    {
        if (!NbdOptionCodec.TryDecodeString(data, out var name) || !export.Matches(name))
        {
            // EXPORT_NAME cannot carry an error: the spec says to hang up.
            NbdProtocolException.Throw("OPT_EXPORT_NAME for an unknown export");
        }

        var size = NbdHandshake.ExportNameReplySize + NbdHandshake.ExportNameReplyPadding;
        var written = NbdHandshake.WriteExportNameReply(output.GetSpan(size), (ulong)export.Device.Size, export.FlagsFor(_structuredReplies), _noZeroes);
        output.Advance(written);
        await output.FlushOrThrowAsync(ct).ConfigureAwait(false);
        return true;
    }

    private async Task ListAsync(byte[] data, CancellationToken ct)
    {
        if (data.Length != 0)
        {
            await ReplyOptionAsync(NbdOption.List, NbdOptionReplyType.ErrInvalid, "OPT_LIST takes no data", ct).ConfigureAwait(false);
            return;
        }

        var payload = new byte[8 + (export.Name.Length * 4) + (export.Description.Length * 4)];
        var length = NbdOptionCodec.WriteServerEntry(payload, export.Name, export.Description);
        WriteOptionReply(NbdOption.List, NbdOptionReplyType.Server, payload.AsSpan(0, length));
        await ReplyOptionAsync(NbdOption.List, NbdOptionReplyType.Ack, null, ct).ConfigureAwait(false);
    }

    /// <summary>OPT_INFO / OPT_GO; true if the export was found and acknowledged.</summary>
    private async Task<bool> InfoAsync(NbdOption option, byte[] data, CancellationToken ct)
    {
        if (!NbdOptionCodec.TryParseInfoRequest(data, out var name, out var requests))
        {
            await ReplyOptionAsync(option, NbdOptionReplyType.ErrInvalid, "malformed info request", ct).ConfigureAwait(false);
            return false;
        }

        if (!export.Matches(name))
        {
            await ReplyOptionAsync(option, NbdOptionReplyType.ErrUnknown, "no such export", ct).ConfigureAwait(false);
            return false;
        }

        Span<byte> info = stackalloc byte[2 + 1024];
        WriteOptionReply(option, NbdOptionReplyType.Info, info[..NbdOptionCodec.WriteInfoExport(info, (ulong)export.Device.Size, export.FlagsFor(_structuredReplies))]);
        if (requests.Name)
        {
            WriteOptionReply(option, NbdOptionReplyType.Info, info[..NbdOptionCodec.WriteInfoString(info, NbdInfoType.Name, export.Name)]);
        }

        if (requests.Description && export.Description.Length > 0)
        {
            WriteOptionReply(option, NbdOptionReplyType.Info, info[..NbdOptionCodec.WriteInfoString(info, NbdInfoType.Description, export.Description)]);
        }

        // Sent only on request: nbd-client never asks, and an unasked non-default constraint could confuse it.
        if (requests.BlockSize)
        {
            WriteOptionReply(option, NbdOptionReplyType.Info, info[..NbdOptionCodec.WriteInfoBlockSize(info,
                (uint)export.Device.MinimumBlockSize, Math.Max(NbdExport.PreferredBlockSize, (uint)export.Device.MinimumBlockSize), NbdLimits.MaxPayload)]);
        }

        await ReplyOptionAsync(option, NbdOptionReplyType.Ack, null, ct).ConfigureAwait(false);
        return true;
    }

    private async Task StructuredReplyAsync(byte[] data, CancellationToken ct)
    {
        if (data.Length != 0 || _structuredReplies)
        {
            await ReplyOptionAsync(NbdOption.StructuredReply, NbdOptionReplyType.ErrInvalid,
                data.Length != 0 ? "OPT_STRUCTURED_REPLY takes no data" : "structured replies already negotiated", ct).ConfigureAwait(false);
            return;
        }

        _structuredReplies = true;
        await ReplyOptionAsync(NbdOption.StructuredReply, NbdOptionReplyType.Ack, null, ct).ConfigureAwait(false);
    }

    private async Task MetaContextAsync(NbdOption option, byte[] data, CancellationToken ct)
    {
        var set = option == NbdOption.SetMetaContext;
        if (set)
        {
            // SET replaces the selection even when it fails.
            _metaContextSelected = false;
        }

        if (!_structuredReplies)
        {
            await ReplyOptionAsync(option, NbdOptionReplyType.ErrInvalid, "negotiate structured replies first", ct).ConfigureAwait(false);
            return;
        }

        if (!NbdOptionCodec.TryParseMetaContextRequest(data, out var name, out var queries))
        {
            await ReplyOptionAsync(option, NbdOptionReplyType.ErrInvalid, "malformed meta context request", ct).ConfigureAwait(false);
            return;
        }

        if (!export.Matches(name))
        {
            await ReplyOptionAsync(option, NbdOptionReplyType.ErrUnknown, "no such export", ct).ConfigureAwait(false);
            return;
        }

        var match = set
            ? queries.Contains(BaseAllocation)
            : queries.Count == 0 || queries.Any(q => q is BaseAllocation or "base:");
        if (match)
        {
            Span<byte> payload = stackalloc byte[64];
            var length = NbdOptionCodec.WriteMetaContext(payload, set ? NbdSession.BaseAllocationContextId : 0, BaseAllocation);
            WriteOptionReply(option, NbdOptionReplyType.MetaContext, payload[..length]);
            _metaContextSelected |= set;
        }

        await ReplyOptionAsync(option, NbdOptionReplyType.Ack, null, ct).ConfigureAwait(false);
    }

    private void WriteOptionReply(NbdOption option, NbdOptionReplyType type, ReadOnlySpan<byte> payload)
    {
        var span = output.GetSpan(NbdOptionReplyHeader.Size + payload.Length);
        NbdOptionCodec.WriteReplyHeader(span, option, type, (uint)payload.Length);
        payload.CopyTo(span[NbdOptionReplyHeader.Size..]);
        output.Advance(NbdOptionReplyHeader.Size + payload.Length);
    }

    /// <summary>Writes a final reply (ACK or error with an optional message) and flushes.</summary>
    private async ValueTask ReplyOptionAsync(NbdOption option, NbdOptionReplyType type, string? message, CancellationToken ct)
    {
        var payload = message is null ? [] : System.Text.Encoding.UTF8.GetBytes(message);
        WriteOptionReply(option, type, payload);
        ConnectionLog.Option(logger, connectionId, (uint)option, type.ToString());
        await output.FlushOrThrowAsync(ct).ConfigureAwait(false);
    }
}
