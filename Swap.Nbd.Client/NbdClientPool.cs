namespace Swap.Nbd.Client;

/// <summary>
/// N connections to one export, requests spread round-robin. More than one connection needs the server's
/// CAN_MULTI_CONN, which makes a FLUSH on any connection cover writes completed on all of them.
/// </summary>
public sealed class NbdClientPool : IAsyncDisposable
{
    private readonly NbdClientConnection[] _connections;
    private uint _next;

    private NbdClientPool(NbdClientConnection[] connections) => _connections = connections;

    public IReadOnlyList<NbdClientConnection> Connections => _connections;
    public NbdExportInfo Export => _connections[0].Export;
    public long Size => Export.Size;

    public static async Task<NbdClientPool> ConnectAsync(NbdUri uri, int connections, NbdClientOptions? options = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(connections, 1);
        var first = await NbdClientConnection.ConnectAsync(uri, options, ct).ConfigureAwait(false);
        if (connections > 1 && !first.Export.CanMultiConn)
        {
            await first.DisposeAsync().ConfigureAwait(false);
            throw new NotSupportedException($"{uri.Endpoint} does not advertise CAN_MULTI_CONN; use a single connection");
        }

        var rest = new Task<NbdClientConnection>[connections - 1];
        for (var i = 0; i < rest.Length; i++)
        {
            rest[i] = NbdClientConnection.ConnectAsync(uri, options, ct);
        }

        try
        {
            await Task.WhenAll(rest).ConfigureAwait(false);
        }
        catch
        {
            await first.DisposeAsync().ConfigureAwait(false);
            foreach (var task in rest.Where(t => t.IsCompletedSuccessfully))
            {
                await task.Result.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        return new NbdClientPool([first, .. rest.Select(t => t.Result)]);
    }

    /// <summary>The connection the next request goes to.</summary>
    public NbdClientConnection Next() => _connections[Interlocked.Increment(ref _next) % (uint)_connections.Length];

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken ct = default) =>
        Next().ReadAsync(offset, destination, ct);

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool fua = false, CancellationToken ct = default) =>
        Next().WriteAsync(offset, data, fua, ct);

    /// <summary>One FLUSH suffices with CAN_MULTI_CONN; wait for the writes it must cover first.</summary>
    public ValueTask FlushAsync(CancellationToken ct = default) => Next().FlushAsync(ct);

    public ValueTask TrimAsync(long offset, uint length, bool fua = false, CancellationToken ct = default) =>
        Next().TrimAsync(offset, length, fua, ct);

    public ValueTask WriteZeroesAsync(long offset, uint length, bool noHole = false, bool fastZero = false, bool fua = false, CancellationToken ct = default) =>
        Next().WriteZeroesAsync(offset, length, noHole, fastZero, fua, ct);

    public ValueTask CacheAsync(long offset, uint length, CancellationToken ct = default) =>
        Next().CacheAsync(offset, length, ct);

    public Task<IReadOnlyList<NbdExtent>> BlockStatusAsync(long offset, uint length, bool reqOne = false, CancellationToken ct = default) =>
        Next().BlockStatusAsync(offset, length, reqOne, ct);

    public Task DisconnectAsync() => Task.WhenAll(_connections.Select(c => c.DisconnectAsync()));

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
