using System.Buffers.Binary;

namespace Swap.Nbd.Protocol;

/// <summary>Codec for the fixed-newstyle greeting, the client flags and the OPT_EXPORT_NAME reply.</summary>
public static class NbdHandshake
{
    /// <summary>NBDMAGIC, IHAVEOPT, u16 handshake flags.</summary>
    public const int GreetingSize = 18;
    public const int ClientFlagsSize = 4;
    /// <summary>u64 size, u16 flags; followed by 124 zero bytes unless NO_ZEROES was agreed.</summary>
    public const int ExportNameReplySize = 10;
    public const int ExportNameReplyPadding = 124;

    public static void WriteGreeting(Span<byte> destination, NbdHandshakeFlags flags)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.InitPasswd);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], NbdMagic.IHaveOpt);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], (ushort)flags);
    }

    public static bool TryReadGreeting(ReadOnlySpan<byte> source, out NbdHandshakeFlags flags)
    {
        flags = default;
        if (source.Length < GreetingSize)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.InitPasswd)
        {
            NbdProtocolException.Throw("server greeting does not start with NBDMAGIC");
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(source[8..]) != NbdMagic.IHaveOpt)
        {
            NbdProtocolException.Throw("server is not a newstyle NBD server (no IHAVEOPT)");
        }

        flags = (NbdHandshakeFlags)BinaryPrimitives.ReadUInt16BigEndian(source[16..]);
        return true;
    }

    public static void WriteClientFlags(Span<byte> destination, NbdClientFlags flags) =>
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)flags);

    public static bool TryReadClientFlags(ReadOnlySpan<byte> source, out NbdClientFlags flags)
    {
        flags = default;
        if (source.Length < ClientFlagsSize)
        {
            return false;
        }

        flags = (NbdClientFlags)BinaryPrimitives.ReadUInt32BigEndian(source);
        return true;
    }

    /// <summary>Writes the OPT_EXPORT_NAME reply; returns the number of bytes written (10 or 134).</summary>
    public static int WriteExportNameReply(Span<byte> destination, ulong size, NbdTransmissionFlags flags, bool noZeroes)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, size);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], (ushort)flags);
        if (noZeroes)
        {
            return ExportNameReplySize;
        }

        destination.Slice(ExportNameReplySize, ExportNameReplyPadding).Clear();
        return ExportNameReplySize + ExportNameReplyPadding;
    }

    public static bool TryReadExportNameReply(ReadOnlySpan<byte> source, out ulong size, out NbdTransmissionFlags flags)
    {
        size = 0;
        flags = default;
        if (source.Length < ExportNameReplySize)
        {
            return false;
        }

        size = BinaryPrimitives.ReadUInt64BigEndian(source);
        flags = (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(source[8..]);
        return true;
    }
}
