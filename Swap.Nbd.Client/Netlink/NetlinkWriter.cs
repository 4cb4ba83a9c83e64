using System.Runtime.InteropServices;
using System.Text;

namespace Swap.Nbd.Client.Netlink;

/// <summary>
/// Builds netlink messages (header, generic netlink header, attributes, nested attributes) into a caller's buffer,
/// in host byte order as netlink wants. Throws <see cref="ArgumentException"/> when the buffer is too small.
/// </summary>
public ref struct NetlinkWriter
{
    private readonly Span<byte> _buffer;
    private int _position;
    private int _messageStart;

    public NetlinkWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _messageStart = -1;
    }

    /// <summary>Bytes written so far (whole messages once <see cref="EndMessage"/> ran).</summary>
    public readonly int Length => _position;

    public void BeginMessage(ushort type, NetlinkFlags flags, uint sequence, uint portId = 0)
    {
        if (_messageStart >= 0)
        {
            throw new InvalidOperationException("a message is still open");
        }

        _messageStart = _position;
        var header = Take(Netlink.MessageHeaderSize);
        MemoryMarshal.Write(header, 0u); // length, set by EndMessage
        MemoryMarshal.Write(header[4..], type);
        MemoryMarshal.Write(header[6..], (ushort)flags);
        MemoryMarshal.Write(header[8..], sequence);
        MemoryMarshal.Write(header[12..], portId);
    }

    public void GenericHeader(byte command, byte version)
    {
        var header = Take(Netlink.GenericHeaderSize);
        header[0] = command;
        header[1] = version;
        header[2] = 0;
        header[3] = 0;
    }

    public void U8(ushort type, byte value) => Attribute(type, 1)[0] = value;

    public void U16(ushort type, ushort value) => MemoryMarshal.Write(Attribute(type, 2), value);

    public void U32(ushort type, uint value) => MemoryMarshal.Write(Attribute(type, 4), value);

    public void U64(ushort type, ulong value) => MemoryMarshal.Write(Attribute(type, 8), value);

    /// <summary>A u64 attribute when <paramref name="value"/> is set; nothing otherwise (the kernel keeps its default).</summary>
    public void U64IfSet(ushort type, ulong? value)
    {
        if (value is { } v)
        {
            U64(type, v);
        }
    }

    /// <summary>A string attribute when <paramref name="value"/> is set; nothing otherwise.</summary>
    public void TextIfSet(ushort type, string? value)
    {
        if (value is not null)
        {
            Text(type, value);
        }
    }

    /// <summary>A NUL-terminated string attribute (NLA_NUL_STRING / NLA_STRING both accept it).</summary>
    public void Text(ushort type, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        var payload = Attribute(type, length + 1);
        Encoding.UTF8.GetBytes(value, payload);
        payload[length] = 0;
    }

    /// <summary>Opens a nested attribute; pass the returned mark to <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        var start = _position;
        var header = Take(Netlink.AttributeHeaderSize);
        MemoryMarshal.Write(header[2..], (ushort)(type | Netlink.AttributeNested));
        return start;
    }

    public readonly void EndNested(int mark) => MemoryMarshal.Write(_buffer[mark..], checked((ushort)(_position - mark)));

    /// <summary>Closes the message (its length goes into the header); returns the bytes written so far.</summary>
    public int EndMessage()
    {
        if (_messageStart < 0)
        {
            throw new InvalidOperationException("no message is open");
        }

        MemoryMarshal.Write(_buffer[_messageStart..], (uint)(_position - _messageStart));
        _messageStart = -1;
        return _position;
    }

    private Span<byte> Attribute(ushort type, int length)
    {
        var total = Netlink.AttributeHeaderSize + length;
        var attribute = Take(Netlink.Align(total));
        MemoryMarshal.Write(attribute, checked((ushort)total));
        MemoryMarshal.Write(attribute[2..], type);
        attribute[total..].Clear();
        return attribute.Slice(Netlink.AttributeHeaderSize, length);
    }

    private Span<byte> Take(int length)
    {
        if (_buffer.Length - _position < length)
        {
            throw new ArgumentException($"the netlink buffer ({_buffer.Length} bytes) is too small");
        }

        var span = _buffer.Slice(_position, length);
        _position += length;
        return span;
    }
}
