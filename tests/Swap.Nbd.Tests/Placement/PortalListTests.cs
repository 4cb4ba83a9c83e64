using NUnit.Framework;
using Swap.Nbd.Tests.Support;
using Swap.Slabs.Placement;

namespace Swap.Nbd.Tests.Placement;

[Category(Tier.Unit)]
[Parallelizable(ParallelScope.Self)]
public sealed class PortalListTests
{
    [Test]
    public void Infiniswaps_format_parses_as_is()
    {
        var entries = PortalList.Parse("3\n192.168.0.12:9400\n192.168.0.11:9400\n192.168.0.13:9400\n");
        Assert.That(entries, Is.EqualTo(new[]
        {
            new PortalEntry("192.168.0.12", 9400, 2),
            new PortalEntry("192.168.0.11", 9400, 3),
            new PortalEntry("192.168.0.13", 9400, 4),
        }));
    }

    [Test]
    public void The_example_in_the_repository_parses()
    {
        var entries = PortalList.Load(Repo.Path("portal.list.example"));
        Assert.That(entries.Select(e => e.ToString()), Is.EqualTo(new[] { "127.0.0.1:9400", "127.0.0.1:9401", "127.0.0.1:9402" }));
    }

    [Test]
    public void Comments_blank_lines_whitespace_ipv6_and_host_names_are_allowed()
    {
        const string Text = "# donors\r\n\r\n  4   # four of them\r\n\tdonor-1.example.org:9400 \r\n[::1]:9401\r\n# a spare\r\n[fe80::1:2]:65535   \r\nlocalhost:1";
        var entries = PortalList.Parse(Text);
        Assert.That(entries, Is.EqualTo(new[]
        {
            new PortalEntry("donor-1.example.org", 9400, 4),
            new PortalEntry("::1", 9401, 5),
            new PortalEntry("fe80::1:2", 65535, 7),
            new PortalEntry("localhost", 1, 8),
        }));
        Assert.That(entries.Select(e => e.ToString()), Is.EqualTo(new[] { "donor-1.example.org:9400", "[::1]:9401", "[fe80::1:2]:65535", "localhost:1" }));
    }

    [TestCase("1\n127.0.0.1:9400\nx:abc\n", "portal.list line 3: 'x:abc' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\nhost:0\n", "portal.list line 2: 'host:0' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\nhost:65536\n", "portal.list line 2: 'host:65536' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\nhost\n", "portal.list line 2: 'host' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\n:9400\n", "portal.list line 2: ':9400' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\nhost:+80\n", "portal.list line 2: 'host:+80' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\nbad host:80\n", "portal.list line 2: 'bad host:80' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\n[nope]:80\n", "portal.list line 2: '[nope]:80' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\n[::1]\n", "portal.list line 2: '[::1]' is not HOST:PORT (port must be 1-65535)")]
    [TestCase("1\n::1:9400\n", "portal.list line 2: '::1:9400' is not HOST:PORT (write an IPv6 address in brackets, e.g. [::1]:9400)")]
    [TestCase("3\n127.0.0.1:9400\n127.0.0.1:9401\n", "portal.list line 1: the count says 3 daemons but 2 are listed; make the count 2")]
    [TestCase("# donors\n1\na:1\nb:2\n", "portal.list line 2: the count says 1 daemon but 2 are listed; make the count 2")]
    [TestCase("2\na:9400\nb:9400\nA:9400\n", "portal.list line 4: A:9400 is listed twice (first on line 2)")]
    [TestCase("2\n[::1]:9400\n[0:0:0:0:0:0:0:1]:9400\n", "portal.list line 3: [0:0:0:0:0:0:0:1]:9400 is listed twice (first on line 2)")]
    [TestCase("", "portal.list: no daemons listed (expected the number of daemons on the first line, then one HOST:PORT a line)")]
    [TestCase("# nothing yet\n\n   \n", "portal.list: no daemons listed (expected the number of daemons on the first line, then one HOST:PORT a line)")]
    [TestCase("0\n", "portal.list line 1: the count is 0 but no daemon follows; list at least one HOST:PORT, one a line")]
    [TestCase("\n\n2 # two\n", "portal.list line 3: the count is 2 but no daemon follows; list at least one HOST:PORT, one a line")]
    [TestCase("127.0.0.1:9400\n", "portal.list line 1: '127.0.0.1:9400' is not the number of daemons (the first line must be the count, e.g. 3, then one HOST:PORT a line)")]
    [TestCase("-1\na:1\n", "portal.list line 1: '-1' is not the number of daemons (the first line must be the count, e.g. 3, then one HOST:PORT a line)")]
    public void Errors_name_the_line_and_the_fix(string text, string message)
    {
        var ex = Assert.Throws<PortalListException>(() => PortalList.Parse(text));
        Assert.That(ex.Message, Is.EqualTo(message));
    }

    [Test]
    public void The_exception_carries_the_line()
    {
        var ex = Assert.Throws<PortalListException>(() => PortalList.Parse("1\n127.0.0.1:9400\nx:abc\n"));
        Assert.That(ex.Line, Is.EqualTo(3));
    }

    [Test]
    public void Load_names_the_path_in_parse_and_file_errors()
    {
        var dir = Directory.CreateTempSubdirectory("swapnbd-portal-");
        try
        {
            var path = Path.Combine(dir.FullName, "portal.list");
            File.WriteAllText(path, "2\na:1\n");
            var parse = Assert.Throws<PortalListException>(() => PortalList.Load(path));
            Assert.That(parse.Message, Is.EqualTo($"{path} line 1: the count says 2 daemons but 1 is listed; make the count 1"));

            var missing = Path.Combine(dir.FullName, "missing.list");
            var file = Assert.Throws<PortalListException>(() => PortalList.Load(missing));
            Assert.That(file.Message, Does.StartWith($"{missing}: cannot read the list of daemons ("));
            Assert.That(file.InnerException, Is.InstanceOf<FileNotFoundException>());

            var directory = Assert.Throws<PortalListException>(() => PortalList.Load(dir.FullName));
            Assert.That(directory.Message, Does.StartWith($"{dir.FullName}: cannot read the list of daemons ("));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
