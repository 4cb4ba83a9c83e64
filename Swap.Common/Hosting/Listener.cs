using System.Net;
using System.Net.Sockets;

namespace Swap.Common.Hosting;

/// <summary>The listening and accept steps shared by the NBD server and the donor daemon.</summary>
public static class Listener
{
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    /// <summary>
    /// A TCP socket bound to <paramref name="endPoint"/> and listening. It may take a port that connections of an
    /// earlier process still hold in TIME_WAIT (SO_REUSEADDR), but never one another process listens on: .NET's
    /// ReuseAddress option also sets SO_REUSEPORT on Linux, which let a second server bind the same port and receive
    /// some of the clients' connections, so a kernel nbd device could end up with its connections on two servers.
    /// </summary>
    public static Socket ListenTcp(EndPoint endPoint, int backlog = 128)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (OperatingSystem.IsLinux())
            {
                socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            }
            else
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            }

            socket.Bind(endPoint);
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A Unix socket at <paramref name="path"/>, listening, that only this process's user can connect to: its
    /// directory is made private first (<see cref="PrivateDirectory.Ensure"/>: created 0700, or refused unless ours
    /// and writable by no one else), then the socket is bound inside it and set to mode 0600. A socket file left by a
    /// crashed server is removed; one a live server still listens on is refused. Errors are <see cref="IOException"/>s
    /// (or <see cref="SocketException"/>s) whose message starts with <paramref name="key"/>.
    /// </summary>
    /// <param name="tightened">The directory's previous mode when it had to be tightened to 0700, else null.</param>
    public static Socket ListenUnix(string path, string key, out UnixFileMode? tightened, int backlog = 128)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException($"{key}: a private Unix socket needs Unix file modes");
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))
            ?? throw new IOException($"{key}: {path} has no directory");
        tightened = PrivateDirectory.Ensure(directory, key);

        // A socket file left by a crashed server would make bind fail; a live server still holding it would not notice.
        if (Path.Exists(path))
        {
            DeleteStaleSocket(path, key);
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            // Nobody else can reach it yet (the directory is 0700): the mode is the second lock, not a race.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void DeleteStaleSocket(string path, string key)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            File.Delete(path);
            return;
        }

        throw new IOException($"{key}: another server is already listening on {path}");
    }

    /// <summary>
    /// The next connection, or null once the listener is closed (or fails while <paramref name="stopping"/>).
    /// A transient failure (EMFILE, ECONNABORTED) is reported and retried after 100 ms, so the connections already
    /// open keep being served.
    /// </summary>
    public static async Task<Socket?> AcceptAsync(Socket listener, Func<bool> stopping, Action<SocketException> failed, TimeProvider time)
    {
        while (true)
        {
            try
            {
                return await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ObjectDisposedException || (ex is SocketException && stopping()))
            {
                return null;
            }
            catch (SocketException ex)
            {
                failed(ex);
                await Task.Delay(TimeSpan.FromMilliseconds(100), time).ConfigureAwait(false);
            }
        }
    }
}
