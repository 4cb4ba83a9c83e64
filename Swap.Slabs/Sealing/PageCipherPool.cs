namespace Swap.Slabs.Sealing;

/// <summary>
/// A fixed set of <see cref="PageCipher"/> instances, all under one key, lent to one thread at a time without a lock
/// or an allocation: a lease is a claimed slot, held only while pages are sealed or opened (never across an await).
/// </summary>
internal sealed class PageCipherPool : IDisposable
{
    // One claim flag per 64-byte line, so threads claiming neighbouring slots do not share a cache line.
    private const int Spacing = 16;

    private readonly PageCipher[] _ciphers;
    private readonly int[] _claimed;

    public PageCipherPool(PageCipherAlgorithm algorithm, ReadOnlySpan<byte> key, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        _ciphers = new PageCipher[count];
        _claimed = new int[count * Spacing];
        for (var i = 0; i < count; i++)
        {
            _ciphers[i] = new PageCipher(algorithm, key);
        }
    }

    public int Count => _ciphers.Length;

    /// <summary>Claims a free instance (spinning only if every one is in use: more threads sealing than instances).</summary>
    public Lease Rent()
    {
        var start = (int)((uint)Environment.CurrentManagedThreadId % (uint)_ciphers.Length);
        var spin = default(SpinWait);
        while (true)
        {
            for (var i = 0; i < _ciphers.Length; i++)
            {
                var slot = start + i;
                if (slot >= _ciphers.Length)
                {
                    slot -= _ciphers.Length;
                }

                if (Volatile.Read(ref _claimed[slot * Spacing]) == 0 && Interlocked.CompareExchange(ref _claimed[slot * Spacing], 1, 0) == 0)
                {
                    return new Lease(this, slot);
                }
            }

            spin.SpinOnce();
        }
    }

    public void Dispose()
    {
        foreach (var cipher in _ciphers)
        {
            cipher.Dispose();
        }
    }

    /// <summary>One claimed instance; disposing it gives the instance back.</summary>
    public readonly struct Lease(PageCipherPool pool, int slot) : IDisposable
    {
        public PageCipher Cipher => pool._ciphers[slot];

        public void Dispose() => Volatile.Write(ref pool._claimed[slot * Spacing], 0);
    }
}
