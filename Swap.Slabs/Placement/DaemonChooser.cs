using Swap.Slabs.Remote;

namespace Swap.Slabs.Placement;

/// <summary>
/// Orders the healthy daemons (up, not draining, and not on probation) for one slab by power of two choices: two distinct daemons at random
/// (<see cref="PowerOfChoices"/>), asked how many slabs they can still take (one round trip, both at once); the freer
/// comes first (ties at random), then the other unless it said it is full, then everyone else in random order.
/// </summary>
internal sealed class DaemonChooser(DaemonMembers members, long slabSize, LockedRandom random, DaemonProbation probation)
{
    /// <summary>
    /// Daemons whose link is up, that are not draining (left the portal) and not on probation after a failure
    /// (<see cref="DaemonProbation"/>), with that link.
    /// </summary>
    public List<(DaemonEndpoint Daemon, DaemonLink Link)> HealthyLinks()
    {
        var current = members.Current;
        var links = new List<(DaemonEndpoint, DaemonLink)>(current.Length);
        foreach (var member in current)
        {
            if (!member.Draining && member.Endpoint.Link is { IsAlive: true } link && probation.MayTakeSlabs(member.Serial))
            {
                links.Add((member.Endpoint, link));
            }
        }

        return links;
    }

    /// <summary>Whether the daemon may keep a slab just granted: false once it is draining or gone from the pool.</summary>
    public bool MayKeep(DaemonEndpoint daemon) => members.Find(daemon) is { Draining: false };

    /// <summary>The candidates in the order a slab should try them; daemons sampled and found full are left out.</summary>
    public async Task<List<(DaemonEndpoint Daemon, DaemonLink Link)>> ChooseAsync(List<(DaemonEndpoint Daemon, DaemonLink Link)> candidates)
    {
        var order = new List<(DaemonEndpoint, DaemonLink)>(candidates.Count);
        if (candidates.Count == 0)
        {
            return order;
        }

        var picked = new int[Math.Min(2, candidates.Count)];
        random.Sample(candidates.Count, picked);
        var queries = new Task<long>[picked.Length];
        for (var i = 0; i < picked.Length; i++)
        {
            queries[i] = QueryFreeAsync(candidates[picked[i]].Link);
        }

        var free = new long[candidates.Count];
        for (var i = 0; i < picked.Length; i++)
        {
            free[picked[i]] = await queries[i].ConfigureAwait(false);
        }

        var best = random.Freest(picked, free);
        if (best >= 0)
        {
            order.Add(candidates[best]);
            foreach (var other in picked)
            {
                if (other != best && free[other] > 0)
                {
                    order.Add(candidates[other]);
                }
            }
        }

        // Both samples full (or unreachable): try the daemons not sampled, in random order.
        var rest = candidates.Where((_, index) => Array.IndexOf(picked, index) < 0).ToArray();
        random.Shuffle(rest);
        order.AddRange(rest);
        return order;
    }

    private async Task<long> QueryFreeAsync(DaemonLink link)
    {
        try
        {
            var reply = await link.QueryFreeAsync(slabSize).ConfigureAwait(false);
            return reply.Ok ? reply.FreeSlabs : 0;
        }
        catch (DaemonLinkException)
        {
            return 0;
        }
    }
}
