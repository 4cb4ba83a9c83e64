using System.Globalization;
using Swap.Nbd.Client.Netlink;

namespace Swap.Nbd.Client.Attach;

/// <summary>Handshakes N connections and binds them to an nbd device with NBD_CMD_CONNECT.</summary>
internal static class KernelAttacher
{
    /// <summary>Returns the device index the kernel bound, and what the server said about the export.</summary>
    public static async Task<(uint Index, NbdExportInfo Export)> AttachAsync(NbdNetlink netlink, AttachSettings settings, AttachLog log, CancellationToken ct)
    {
        var sockets = new List<NbdNegotiatedSocket>();
        try
        {
            for (var i = 0; i < settings.Connections; i++)
            {
                sockets.Add(await KernelSocket.HandshakeAsync(settings.Uri, ct).ConfigureAwait(false));
            }

            var export = sockets[0].Negotiation.Export;
            if (export.Size < settings.BlockSize)
            {
                throw new IOException($"the export ({export.Size} bytes) is smaller than one block of {settings.BlockSize}");
            }

            if (settings.Connections > 1 && !export.CanMultiConn)
            {
                log.Warn($"the server does not advertise CAN_MULTI_CONN; {settings.Connections} connections may see stale data after a flush");
            }

            log.Info(string.Create(CultureInfo.InvariantCulture,
                $"handshake with {settings.Uri.Endpoint} done: {settings.Connections} connection(s), {export.Size} bytes, flags 0x{(ushort)export.Flags:x4}"));
            var index = netlink.Connect(new NbdNetlinkConnect
            {
                Sockets = sockets.Select(KernelSocket.Descriptor).ToList(),
                SizeBytes = (ulong)export.Size,
                BlockSizeBytes = settings.BlockSize,
                ServerFlags = (ushort)export.Flags,
                TimeoutSeconds = settings.TimeoutSeconds,
                DeadConnectionTimeoutSeconds = settings.DeadTimeoutSeconds,
                BackendIdentifier = settings.BackendId,
                Index = settings.Index,
            });

            // The kernel holds its own references now.
            foreach (var socket in sockets)
            {
                KernelSocket.Release(socket);
            }

            sockets.Clear();
            return (index, export);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }
}
