using Swap.Donor.Transport;

namespace Swap.Nbd.Tests.Faults;

/// <summary>One donor connection's transport under a <see cref="DonorFaultLayer"/>: stalls receives, garbles sends, drops on demand.</summary>
internal sealed class FaultyDonorTransport(IDonorTransport inner, DonorFaultLayer layer) : IDonorTransport
{
    // Never disposed: Drop (from a test thread) may cancel it after the daemon disposed the transport.
    private readonly CancellationTokenSource _closed = new();
    private byte[] _garbage = [];

    public int Available => inner.Available;

    /// <summary>Receives from the real transport; while stalled, what arrived is held back (not returned to the daemon) until the stall clears.</summary>
    public int Receive(Span<byte> destination)
    {
        var n = inner.Receive(destination);
        if (n > 0 && (layer.Active & DonorFaults.Stall) != 0)
        {
            try
            {
                layer.HoldWhileStalled(_closed.Token);
            }
            catch (OperationCanceledException)
            {
                throw new ObjectDisposedException(nameof(FaultyDonorTransport), "the connection closed while stalled");
            }
        }

        return n;
    }

    /// <summary>Sends through the real transport, replaced by random bytes of the same length while Garbage is on.</summary>
    public int Send(ReadOnlySpan<byte> data)
    {
        int n;
        if ((layer.Active & DonorFaults.Garbage) != 0)
        {
            if (_garbage.Length < data.Length)
            {
                _garbage = new byte[data.Length];
            }

            var garbage = _garbage.AsSpan(0, data.Length);
            Random.Shared.NextBytes(garbage);
            n = inner.Send(garbage);
        }
        else
        {
            n = inner.Send(data);
        }

        layer.CountSent(n);
        return n;
    }

    public void Shutdown()
    {
        _closed.Cancel();
        inner.Shutdown();
    }

    /// <summary>Closes the connection under the daemon, as a network failure would: its receive ends and the daemon cleans up.</summary>
    public void Drop()
    {
        try
        {
            Shutdown();
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // Already closed by the daemon.
        }
    }

    public void Dispose()
    {
        layer.Forget(this);
        _closed.Cancel();
        inner.Dispose();
    }
}
