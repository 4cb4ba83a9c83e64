using System.Net;
using System.Net.Sockets;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A wiretap on loopback: forwards one connection to <c>target</c> and keeps every byte the client sent, as an
/// eavesdropper on the path between a server and a daemon would see them. It can also cut the connection in the
/// middle of what the target sends back (<see cref="CutDownstreamAfter"/>), as a failing link does mid-frame.
/// </summary>
internal sealed class TapProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly MemoryStream _upstream = new();
    private readonly Lock _lock = new();
    private readonly List<Socket> _sockets = [];
    private long _downstreamLeft = long.MaxValue;

    public TapProxy(EndPoint target)
    {
        _listener.Start();
        _ = Task.Run(async () =>
        {
            var client = await _listener.AcceptSocketAsync();
            var server = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await server.ConnectAsync(target);
            lock (_lock)
            {
                _sockets.AddRange([client, server]);
            }

            _ = PumpAsync(client, server, record: true);
            _ = PumpAsync(server, client, record: false);
        });
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>What the client has sent so far.</summary>
    public byte[] Upstream()
    {
        lock (_lock)
        {
            return _upstream.ToArray();
        }
    }

    /// <summary>Forwards <paramref name="bytes"/> more bytes from the target, then closes both sides.</summary>
    public void CutDownstreamAfter(long bytes) => Interlocked.Exchange(ref _downstreamLeft, bytes);

    public void Dispose()
    {
        _listener.Stop();
        lock (_lock)
        {
            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool record)
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                if (record)
                {
                    lock (_lock)
                    {
                        _upstream.Write(buffer, 0, n);
                    }
                }
                else
                {
                    var left = Interlocked.Read(ref _downstreamLeft);
                    if (left <= n)
                    {
                        await to.SendAsync(buffer.AsMemory(0, (int)left));
                        Dispose();
                        return;
                    }

                    Interlocked.Add(ref _downstreamLeft, -n);
                }

                await to.SendAsync(buffer.AsMemory(0, n));
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Either side went away.
        }
    }
}
