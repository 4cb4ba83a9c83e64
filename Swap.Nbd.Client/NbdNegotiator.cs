using System.Net;
using System.Net.Sockets;
using Swap.Nbd.Protocol;

namespace Swap.Nbd.Client;

/// <summary>
/// Connects to an NBD server and runs option haggling: a full negotiation that stops at the transmission phase,
/// or query-only sessions (OPT_LIST, OPT_INFO) that end with OPT_ABORT.
/// </summary>
public static class NbdNegotiator
{
    /// <summary>Opens the transport (TCP with NoDelay, or a Unix socket) and nothing else.</summary>
    public static async Task<Socket> ConnectSocketAsync(NbdUri uri, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        Socket? socket = null;
        try
        {
            if (uri.Transport == NbdTransport.Unix)
            {
                socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(uri.SocketPath!), ct).ConfigureAwait(false);
            }
            else
            {
                var endPoint = IPAddress.TryParse(uri.Host, out var address)
                    ? (EndPoint)new IPEndPoint(address, uri.Port)
                    : new DnsEndPoint(uri.Host!, uri.Port);
                socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
            }

            return socket;
        }
        catch (SocketException ex)
        {
            socket?.Dispose();
            throw new NbdConnectionClosedException($"cannot connect to {uri.Endpoint}: {ex.Message}", ex);
        }
        catch
        {
            socket?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects and negotiates up to the transmission phase: structured replies and base:allocation if wanted,
    /// then OPT_GO (OPT_EXPORT_NAME if the server does not know OPT_GO).
    /// </summary>
    public static Task<NbdNegotiatedSocket> NegotiateAsync(NbdUri uri, NbdClientOptions? options = null, CancellationToken ct = default)
    {
        options ??= new NbdClientOptions();
        return WithSessionAsync(uri, options, keepOpen: true, async (socket, session, token) =>
        {
            var (structured, contextId) = await NegotiateFeaturesAsync(session, uri, options, token).ConfigureAwait(false);
            var export = await session.InfoAsync(NbdOption.Go, uri.ExportName, token).ConfigureAwait(false);
            var usedExportName = export is null;
            if (export is null)
            {
                export = await session.ExportNameAsync(uri.ExportName, token).ConfigureAwait(false);
            }

            return new NbdNegotiatedSocket(socket, new NbdNegotiation(export, structured, contextId, usedExportName));
        }, ct);
    }

    /// <summary>Lists the server's exports with OPT_LIST, then aborts.</summary>
    public static Task<IReadOnlyList<NbdExportListing>> ListExportsAsync(NbdUri uri, NbdClientOptions? options = null, CancellationToken ct = default) =>
        WithSessionAsync<IReadOnlyList<NbdExportListing>>(uri, options ?? new NbdClientOptions(), keepOpen: false, async (_, session, token) =>
        {
            var exports = await session.ListAsync(token).ConfigureAwait(false);
            await session.AbortAsync(token).ConfigureAwait(false);
            return exports;
        }, ct);

    /// <summary>
    /// Asks about the URI's export with OPT_INFO (after the same feature negotiation as a real connection, so the
    /// flags match), then aborts. Falls back to OPT_EXPORT_NAME plus NBD_CMD_DISC for servers without OPT_INFO.
    /// </summary>
    public static Task<NbdNegotiation> QueryInfoAsync(NbdUri uri, NbdClientOptions? options = null, CancellationToken ct = default)
    {
        options ??= new NbdClientOptions();
        return WithSessionAsync(uri, options, keepOpen: false, async (socket, session, token) =>
        {
            var (structured, contextId) = await NegotiateFeaturesAsync(session, uri, options, token).ConfigureAwait(false);
            var export = await session.InfoAsync(NbdOption.Info, uri.ExportName, token).ConfigureAwait(false);
            if (export is not null)
            {
                await session.AbortAsync(token).ConfigureAwait(false);
                return new NbdNegotiation(export, structured, contextId, false);
            }

            export = await session.ExportNameAsync(uri.ExportName, token).ConfigureAwait(false);
            var disconnect = new byte[NbdRequest.Size];
            new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0).Write(disconnect);
            await socket.SendAsync(disconnect, token).ConfigureAwait(false);
            return new NbdNegotiation(export, structured, contextId, true);
        }, ct);
    }

    private static async Task<(bool Structured, uint? ContextId)> NegotiateFeaturesAsync(
        NbdOptionSession session, NbdUri uri, NbdClientOptions options, CancellationToken ct)
    {
        var structured = options.StructuredReplies && await session.StructuredRepliesAsync(ct).ConfigureAwait(false);
        uint? contextId = structured && options.BaseAllocation
            ? await session.SetBaseAllocationAsync(uri.ExportName, ct).ConfigureAwait(false)
            : null;
        return (structured, contextId);
    }

    private static async Task<T> WithSessionAsync<T>(NbdUri uri, NbdClientOptions options, bool keepOpen,
        Func<Socket, NbdOptionSession, CancellationToken, Task<T>> body, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(uri);
        using var deadline = new CancellationTokenSource(options.ConnectTimeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, ct);
        Socket? socket = null;
        var success = false;
        try
        {
            socket = await ConnectSocketAsync(uri, linked.Token).ConfigureAwait(false);
            using var stream = new NetworkStream(socket, ownsSocket: false);
            var session = new NbdOptionSession(stream);
            await session.GreetAsync(linked.Token).ConfigureAwait(false);
            var result = await body(socket, session, linked.Token).ConfigureAwait(false);
            success = true;
            return result;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new TimeoutException($"NBD handshake with {uri.Endpoint} took longer than {options.ConnectTimeout.TotalSeconds:0.#} s");
        }
        catch (EndOfStreamException ex)
        {
            throw new NbdConnectionClosedException($"{uri.Endpoint} closed the connection during the handshake", ex);
        }
        catch (IOException ex) when (ex is not NbdOptionException and not NbdConnectionClosedException)
        {
            throw new NbdConnectionClosedException($"handshake with {uri.Endpoint} failed: {ex.Message}", ex);
        }
        finally
        {
            if (socket is not null && (!keepOpen || !success))
            {
                socket.Dispose();
            }
        }
    }
}
