using System.Net.Sockets;

namespace Swap.Donor.Transport;

/// <summary>An accepted TCP socket as an <see cref="IDonorTransport"/>: one system call per call, nothing added.</summary>
internal sealed class SocketDonorTransport(Socket socket) : IDonorTransport
{
    public int Available => socket.Available;

    public int Receive(Span<byte> destination) => socket.Receive(destination, SocketFlags.None);

    public int Send(ReadOnlySpan<byte> data) => socket.Send(data, SocketFlags.None);

    public void Shutdown() => socket.Shutdown(SocketShutdown.Both);

    public void Dispose() => socket.Dispose();
}
