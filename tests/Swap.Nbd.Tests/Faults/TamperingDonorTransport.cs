using System.Runtime.InteropServices;
using Swap.Daemon.Protocol;
using Swap.Donor.Transport;

namespace Swap.Nbd.Tests.Faults;

/// <summary>
/// One donor connection's transport under <see cref="DonorLies"/>: follows the requests received and the replies sent
/// (<see cref="DaemonFrameWalker"/>), so it knows which slab range each READ reply carries, and lets the lie change a
/// WRITE's payload before the daemon stores it or a READ reply's data before it leaves.
/// </summary>
internal sealed class TamperingDonorTransport : IDonorTransport
{
    private readonly IDonorTransport _inner;
    private readonly DonorLies _lies;
    // READs in progress by the low bits of their request id (the server's slot index): no allocation per request,
    // so the daemon's own allocation checks hold under this layer. Created at the first READ.
    private readonly Lock _readsLock = new();
    private (ulong Id, SlabRange Range)[]? _reads;
    private readonly DaemonFrameWalker _requests;
    private readonly DaemonFrameWalker _replies;
    private readonly Lock _sendLock = new();
    private DonorLies.PageAssembly _assembly;
    private byte[] _copy = [];
    private byte[] _scratch = [];
    private SlabRange _replying;
    private bool _tamper;

    public TamperingDonorTransport(IDonorTransport inner, DonorLies lies)
    {
        _inner = inner;
        _lies = lies;
        _requests = new DaemonFrameWalker(requests: true)
        {
            Started = walker =>
            {
                if (walker.Header.Opcode == DaemonOpcode.Read)
                {
                    lock (_readsLock)
                    {
                        _reads ??= new (ulong, SlabRange)[4096];
                        _reads[walker.Header.RequestId & 4095] = (walker.Header.RequestId, walker.Range);
                    }
                }
            },
            Body = (walker, position, bytes) =>
            {
                if (walker.Header.Opcode == DaemonOpcode.Write)
                {
                    _lies.OnWrite(walker.Range, (long)walker.Range.Offset + position, bytes, ref _assembly);
                }
            },
        };
        _replies = new DaemonFrameWalker(requests: false)
        {
            Started = walker =>
            {
                _replying = default;
                if (walker.Header.Opcode == DaemonOpcode.Read && walker.Header.Status == DaemonStatus.Ok)
                {
                    lock (_readsLock)
                    {
                        if (_reads?[walker.Header.RequestId & 4095] is { } entry && entry.Id == walker.Header.RequestId)
                        {
                            _replying = entry.Range;
                        }
                    }
                }
            },
            Body = (walker, position, bytes) =>
            {
                if (_tamper && walker.Header.Opcode == DaemonOpcode.Read && _replying.Length != 0)
                {
                    _lies.OnReadReply(_replying, (long)_replying.Offset + position, bytes);
                }
            },
        };
    }

    public int Available => _inner.Available;

    /// <summary>Receives, then lets the lie see (and change) the request bytes before the daemon does.</summary>
    public int Receive(Span<byte> destination)
    {
        if (_lies.Active != DonorLie.DropWrites)
        {
            var n = _inner.Receive(destination);
            _requests.Walk(destination[..n]);
            return n;
        }

        // The daemon may receive a large payload straight into slab memory: what the slab held must be read before.
        if (_scratch.Length < destination.Length)
        {
            _scratch = new byte[destination.Length];
        }

        var received = _inner.Receive(_scratch.AsSpan(0, destination.Length));
        _requests.Walk(_scratch.AsSpan(0, received));
        _scratch.AsSpan(0, received).CopyTo(destination);
        return received;
    }

    /// <summary>While a lie is told, sends all of a changed copy; otherwise passes the bytes through and follows the ones sent.</summary>
    public int Send(ReadOnlySpan<byte> data)
    {
        lock (_sendLock)
        {
            if (_lies.Active == DonorLie.None)
            {
                var sent = _inner.Send(data);
                _tamper = false;
                // Only followed, not changed (the reply callbacks change nothing while _tamper is off).
                _replies.Walk(MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(data), sent));
                return sent;
            }

            if (_copy.Length < data.Length)
            {
                _copy = new byte[data.Length];
            }

            var copy = _copy.AsSpan(0, data.Length);
            data.CopyTo(copy);
            _tamper = true;
            _replies.Walk(copy);
            while (!copy.IsEmpty)
            {
                copy = copy[_inner.Send(copy)..];
            }

            return data.Length;
        }
    }

    public void Shutdown() => _inner.Shutdown();

    public void Dispose() => _inner.Dispose();
}
