using System.Collections.Concurrent;
using Swap.Donor.Transport;

namespace Swap.Nbd.Tests.Faults;

/// <summary>
/// Fault injection for an in-process donor daemon, layered over each connection's transport the way nbdkit's error
/// and delay filters wrap a plugin: pass <see cref="Wrap"/> as the daemon's transport layer, then switch
/// <see cref="Active"/> at run time. Counts what the daemon sends and signals each request it holds, so a test proves
/// "nothing was answered" by a counter, not by sleeping.
/// </summary>
internal sealed class DonorFaultLayer
{
    private readonly ConcurrentDictionary<FaultyDonorTransport, byte> _open = new();
    private readonly ManualResetEventSlim _flowing = new(initialState: true);
    private readonly SemaphoreSlim _held = new(0);
    private int _active;
    private long _bytesSent;

    /// <summary>The faults switched on; setting <see cref="DonorFaults.DropConnections"/> closes every connection at once.</summary>
    public DonorFaults Active
    {
        get => (DonorFaults)Volatile.Read(ref _active);
        set
        {
            // The event is closed before the flag says Stall and opened after it stops saying so: a receive that sees the flag holds.
            if ((value & DonorFaults.Stall) != 0)
            {
                _flowing.Reset();
                Volatile.Write(ref _active, (int)value);
            }
            else
            {
                Volatile.Write(ref _active, (int)value);
                _flowing.Set();
            }

            if ((value & DonorFaults.DropConnections) != 0)
            {
                foreach (var transport in _open.Keys)
                {
                    transport.Drop();
                }
            }
        }
    }

    /// <summary>A malicious donor's lies about the pages it holds (<see cref="TamperingDonorTransport"/>, under the faults above).</summary>
    public DonorLies Lies { get; } = new();

    /// <summary>Bytes the daemon has sent over every connection so far (garbled or not).</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>The daemon's transport layer: wraps one accepted connection.</summary>
    public IDonorTransport Wrap(IDonorTransport inner)
    {
        var transport = new FaultyDonorTransport(new TamperingDonorTransport(inner, Lies), this);
        _open[transport] = 0;
        // Checked after registering, so a DropConnections set meanwhile closes it either here or in the setter.
        if ((Active & DonorFaults.DropConnections) != 0)
        {
            transport.Drop();
        }

        return transport;
    }

    /// <summary>Completes once the daemon has received a request and the stall holds it back (once per held receive).</summary>
    public Task WaitForHeldRequestAsync(CancellationToken ct) => _held.WaitAsync(ct);

    internal void CountSent(int bytes) => Interlocked.Add(ref _bytesSent, bytes);

    /// <summary>Blocks a receive while the stall is on; throws <see cref="OperationCanceledException"/> when <paramref name="closed"/> fires.</summary>
    internal void HoldWhileStalled(CancellationToken closed)
    {
        if (_flowing.IsSet)
        {
            return;
        }

        _held.Release();
        _flowing.Wait(closed);
    }

    internal void Forget(FaultyDonorTransport transport) => _open.TryRemove(transport, out _);
}
