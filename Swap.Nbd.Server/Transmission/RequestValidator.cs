using Swap.Nbd.Protocol;

namespace Swap.Nbd.Server.Transmission;

/// <summary>
/// Decides whether a request header may be served and, if not, which NBD error answers it. Pure: everything it
/// depends on is passed in, so each rule is unit-tested without a connection.
/// </summary>
internal static class RequestValidator
{
    /// <param name="request">The request header as received.</param>
    /// <param name="flags">The transmission flags the export was advertised with.</param>
    /// <param name="structuredReplies">Structured replies were negotiated (allows DF on READ, and BLOCK_STATUS).</param>
    /// <param name="metaContextSelected">base:allocation was selected (allows BLOCK_STATUS).</param>
    /// <param name="exportSize">The export's size in bytes.</param>
    /// <param name="blockSize">The export's minimum block size; offsets and lengths must be multiples of it.</param>
    /// <returns><see cref="NbdError.None"/> when the request may be served, otherwise the error to reply with.</returns>
    public static NbdError Validate(in NbdRequest request, NbdTransmissionFlags flags, bool structuredReplies, bool metaContextSelected,
        ulong exportSize, ulong blockSize)
    {
        var allowed = NbdCommandFlags.Fua;
        var writes = false;
        switch (request.Command)
        {
            case NbdCommand.Read:
                if (structuredReplies)
                {
                    allowed |= NbdCommandFlags.Df;
                }

                break;
            case NbdCommand.Write:
                writes = true;
                break;
            case NbdCommand.Disconnect:
                return NbdError.None;
            case NbdCommand.Flush:
                if ((flags & NbdTransmissionFlags.SendFlush) == 0 || request.Offset != 0 || request.Length != 0)
                {
                    return NbdError.Inval;
                }

                break;
            case NbdCommand.Trim:
                if ((flags & NbdTransmissionFlags.SendTrim) == 0)
                {
                    return NbdError.Inval;
                }

                writes = true;
                break;
            case NbdCommand.WriteZeroes:
                if ((flags & NbdTransmissionFlags.SendWriteZeroes) == 0)
                {
                    return NbdError.Inval;
                }

                allowed |= NbdCommandFlags.NoHole;
                if ((flags & NbdTransmissionFlags.SendFastZero) != 0)
                {
                    allowed |= NbdCommandFlags.FastZero;
                }

                writes = true;
                break;
            case NbdCommand.Cache:
                break;
            case NbdCommand.BlockStatus:
                if (!structuredReplies || !metaContextSelected)
                {
                    return NbdError.Inval;
                }

                allowed |= NbdCommandFlags.ReqOne;
                break;
            default:
                return NbdError.Inval;
        }

        if ((request.Flags & ~allowed) != 0 ||
            ((request.Flags & NbdCommandFlags.Fua) != 0 && (flags & NbdTransmissionFlags.SendFua) == 0))
        {
            return NbdError.Inval;
        }

        if (request.Command is NbdCommand.Read or NbdCommand.Write && request.Length > NbdLimits.MaxPayload)
        {
            return request.Command == NbdCommand.Read ? NbdError.Inval : NbdError.Overflow;
        }

        if (writes && (flags & NbdTransmissionFlags.ReadOnly) != 0)
        {
            return NbdError.Perm;
        }

        if (request.Offset > exportSize || request.Length > exportSize - request.Offset)
        {
            return request.Command is NbdCommand.Write or NbdCommand.WriteZeroes ? NbdError.NoSpc : NbdError.Inval;
        }

        if (blockSize > 1 && ((request.Offset | request.Length) & (blockSize - 1)) != 0)
        {
            return NbdError.Inval;
        }

        if (request.Command == NbdCommand.BlockStatus && request.Length == 0)
        {
            return NbdError.Inval;
        }

        return NbdError.None;
    }
}
