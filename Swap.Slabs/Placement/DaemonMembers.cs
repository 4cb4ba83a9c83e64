using Swap.Slabs.Remote;

namespace Swap.Slabs.Placement;

/// <summary>
/// The daemons the device uses now, as an array replaced whole on every change (copy on write): readers take
/// <see cref="Current"/> without a lock and see one consistent set; changes are serialized by <see cref="Sync"/>.
/// </summary>
internal sealed class DaemonMembers
{
    private DaemonMember[] _members = [];
    private int _nextSerial;

    /// <summary>Held across a change that must see and change the set at once (a drain closing, a daemon coming back).</summary>
    public Lock Sync { get; } = new();

    public DaemonMember[] Current => Volatile.Read(ref _members);

    /// <summary>Adds a member for the endpoint with the next serial.</summary>
    public DaemonMember Add(DaemonEndpoint endpoint)
    {
        lock (Sync)
        {
            var member = new DaemonMember(endpoint, _nextSerial++);
            Volatile.Write(ref _members, [.. _members, member]);
            return member;
        }
    }

    /// <summary>False if it was not a member.</summary>
    public bool Remove(DaemonMember member)
    {
        lock (Sync)
        {
            var members = _members;
            if (Array.IndexOf(members, member) < 0)
            {
                return false;
            }

            Volatile.Write(ref _members, members.Where(m => m != member).ToArray());
            return true;
        }
    }

    public DaemonMember? Find(DaemonEndpoint endpoint) => Array.Find(Current, m => m.Endpoint == endpoint);

    public DaemonMember? Find(DaemonLink link) => Array.Find(Current, m => m.Endpoint.Link == link);

    public DaemonMember? Find(string name) => Array.Find(Current, m => m.Name == name);
}
