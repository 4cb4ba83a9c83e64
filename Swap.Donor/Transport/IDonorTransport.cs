namespace Swap.Donor.Transport;

/// <summary>
/// The byte stream one server connection is served over: a TCP socket in production. It moves bytes and knows no
/// frames; a layer over it (a test's fault layer that stalls, drops or garbles) sees exactly what the daemon sends and receives.
/// </summary>
public interface IDonorTransport : IDisposable
{
    /// <summary>Bytes that can be received now without blocking.</summary>
    int Available { get; }

    /// <summary>Receives at least one byte into <paramref name="destination"/>, blocking until some arrive; 0 at the end of the stream.</summary>
    int Receive(Span<byte> destination);

    /// <summary>Sends some of <paramref name="data"/>, blocking until at least one byte went; returns how many.</summary>
    int Send(ReadOnlySpan<byte> data);

    /// <summary>Ends both directions, so a receive blocked on another thread returns.</summary>
    void Shutdown();
}
