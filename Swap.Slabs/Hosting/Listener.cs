using System.Net.Sockets;

namespace Swap.Slabs.Hosting;

/// <summary>The accept step shared by the NBD server and the donor daemon.</summary>
public static class Listener
{
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
