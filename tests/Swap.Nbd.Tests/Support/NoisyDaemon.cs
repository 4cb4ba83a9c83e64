using System.Net;
using System.Net.Sockets;
using Swap.Daemon.Protocol;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// A fake donor on loopback that completes a proper handshake (it holds the run's cluster key) and then sends fuzzed frames: random bytes, and well-framed
/// headers with random opcodes, statuses, request ids and lengths. Every connection gets a new seed.
/// </summary>
public sealed class NoisyDaemon : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Thread _acceptor;
    private int _connections;

    public NoisyDaemon()
    {
        _listener.Start();
        _acceptor = new Thread(Accept) { IsBackground = true };
        _acceptor.Start();
    }

    public EndPoint EndPoint => _listener.LocalEndpoint;

    public int Connections => Volatile.Read(ref _connections);

    public void Dispose() => _listener.Stop();

    private void Accept()
    {
        try
        {
            while (true)
            {
                var socket = _listener.AcceptSocket();
                var seed = Interlocked.Increment(ref _connections);
                new Thread(() => Serve(socket, seed)) { IsBackground = true }.Start();
            }
        }
        catch (SocketException)
        {
            // Stopped.
        }
    }

    private static void Serve(Socket socket, int seed)
    {
        using var _ = socket;
        var rng = new Random(seed);
        try
        {
            if (!BlockingHandshake.Answer(socket, TestKeys.Cluster, (ulong)seed))
            {
                return;
            }

            // Keep reading what the server sends, so its sends never block on us.
            new Thread(() =>
            {
                var sink = new byte[65536];
                try
                {
                    while (socket.Receive(sink) > 0)
                    {
                    }
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                }
            }) { IsBackground = true }.Start();

            Thread.Sleep(rng.Next(0, 100));
            var frame = new byte[DaemonFrameHeader.Size + 64];
            for (var i = 0; i < rng.Next(1, 20); i++)
            {
                if (rng.Next(3) == 0)
                {
                    rng.NextBytes(frame);
                }
                else
                {
                    var body = rng.Next(0, 64);
                    var opcode = (DaemonOpcode)rng.Next(0, 12);
                    DaemonFrameHeader.For(opcode, (DaemonStatus)rng.Next(0, 9), (ulong)rng.Next(0, 4), body).Write(frame);
                    rng.NextBytes(frame.AsSpan(DaemonFrameHeader.Size));
                }

                socket.Send(frame, 0, rng.Next(1, frame.Length + 1), SocketFlags.None);
            }

            Thread.Sleep(200);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The server hung up on the noise, as it should.
        }
    }
}
