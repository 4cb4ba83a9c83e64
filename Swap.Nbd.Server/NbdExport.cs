using Swap.Nbd.Protocol;
using Swap.BlockDevices;

namespace Swap.Nbd.Server;

/// <summary>The one export a server offers: its names, its device and the transmission flags derived from it.</summary>
public sealed class NbdExport(string name, string description, IBlockDevice device)
{
    public const uint PreferredBlockSize = 4096;

    public string Name { get; } = name;
    public string Description { get; } = description;
    public IBlockDevice Device { get; } = device;

    /// <summary>The default name "" always reaches the export, as nbd-client asks for it.</summary>
    public bool Matches(string requested) => requested.Length == 0 || requested == Name;

    public NbdTransmissionFlags FlagsFor(bool structuredReplies)
    {
        var caps = Device.Capabilities;
        var flags = NbdTransmissionFlags.HasFlags;
        if (caps.HasFlag(BlockDeviceCapabilities.ReadOnly))
        {
            flags |= NbdTransmissionFlags.ReadOnly;
        }

        if (caps.HasFlag(BlockDeviceCapabilities.Flush))
        {
            flags |= NbdTransmissionFlags.SendFlush;
            if (caps.HasFlag(BlockDeviceCapabilities.Fua))
            {
                flags |= NbdTransmissionFlags.SendFua;
            }
        }

        if (caps.HasFlag(BlockDeviceCapabilities.Trim))
        {
            flags |= NbdTransmissionFlags.SendTrim;
        }

        if (caps.HasFlag(BlockDeviceCapabilities.WriteZeroes))
        {
            flags |= NbdTransmissionFlags.SendWriteZeroes;
            if (caps.HasFlag(BlockDeviceCapabilities.FastZero))
            {
                flags |= NbdTransmissionFlags.SendFastZero;
            }
        }

        if (caps.HasFlag(BlockDeviceCapabilities.Cache))
        {
            flags |= NbdTransmissionFlags.SendCache;
        }

        if (caps.HasFlag(BlockDeviceCapabilities.MultiConn))
        {
            flags |= NbdTransmissionFlags.CanMultiConn;
        }

        if (structuredReplies)
        {
            flags |= NbdTransmissionFlags.SendDf;
        }

        return flags;
    }
}
