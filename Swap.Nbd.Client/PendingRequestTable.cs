namespace Swap.Nbd.Client;

/// <summary>
/// The requests of one connection that are queued or on the wire, by cookie, and whether the connection still takes
/// new ones. One lock guards both, so a request is either refused or in the table when <see cref="Close"/> fails what
/// is left: none is lost in between.
/// </summary>
internal sealed class PendingRequestTable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, PendingRequest> _pending = [];
    private ulong _nextCookie;
    private bool _disconnecting;
    private Exception? _failure;

    /// <summary>No failure recorded and no disconnect begun.</summary>
    public bool IsOpen
    {
        get
        {
            lock (_lock)
            {
                return _failure is null && !_disconnecting;
            }
        }
    }

    public bool HasFailed
    {
        get
        {
            lock (_lock)
            {
                return _failure is not null;
            }
        }
    }

    /// <summary>
    /// <see cref="HasFailed"/> without the lock, for the send loop's check before each request: a failure recorded a
    /// moment later is caught by the next check, and the request is failed by <see cref="Close"/> either way.
    /// </summary>
    public bool HasFailedUnlocked => Volatile.Read(ref _failure) is not null;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Gives the request the next cookie and adds it; returns null, or why the connection refuses it.</summary>
    public NbdConnectionClosedException? TryAdd(PendingRequest request)
    {
        lock (_lock)
        {
            if (_failure is not null || _disconnecting)
            {
                return _failure is not null
                    ? new NbdConnectionClosedException($"connection is closed: {_failure.Message}", _failure)
                    : new NbdConnectionClosedException("connection is disconnecting");
            }

            request.Cookie = ++_nextCookie;
            _pending.Add(request.Cookie, request);
            return null;
        }
    }

    /// <summary>Refuses new requests from now on; false when a disconnect had already begun.</summary>
    public bool BeginDisconnect()
    {
        lock (_lock)
        {
            if (_disconnecting)
            {
                return false;
            }

            _disconnecting = true;
            return true;
        }
    }

    /// <summary>Records why the connection ends, unless an earlier reason is recorded already.</summary>
    public void Fail(Exception reason)
    {
        lock (_lock)
        {
            _failure ??= reason;
        }
    }

    public PendingRequest? Find(ulong cookie)
    {
        lock (_lock)
        {
            return _pending.GetValueOrDefault(cookie);
        }
    }

    public void Remove(ulong cookie)
    {
        lock (_lock)
        {
            _pending.Remove(cookie);
        }
    }

    /// <summary>
    /// Records why the connection ended (<paramref name="error"/>, or a clean close when null and nothing was recorded)
    /// and empties the table; returns the reason and hands back the requests that were still in it, to be failed.
    /// </summary>
    public Exception Close(Exception? error, out List<PendingRequest> orphans)
    {
        lock (_lock)
        {
            _failure ??= error ?? new NbdConnectionClosedException(_disconnecting ? "disconnected" : "server closed the connection");
            orphans = [.. _pending.Values];
            _pending.Clear();
            return _failure;
        }
    }
}
