using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using NUnit.Framework;

namespace Swap.Nbd.Tests.Architecture;

/// <summary>
/// The layers of docs/architecture.md, enforced: every project references only the layers below it (checked in the
/// project files and in what the compiler actually emitted), nothing references an executable, and no two namespaces
/// of one project use each other.
/// </summary>
[TestFixture, Category(Tier.Unit), Parallelizable(ParallelScope.Self)]
public sealed partial class LayeringTests
{
    /// <summary>Each library and what it may reference directly; a project missing here fails the test.</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Swap.Common"] = [],
        ["Swap.Nbd.Protocol"] = [],
        ["Swap.Daemon.Protocol"] = [],
        ["Swap.BlockDevices"] = ["Swap.Common"],
        ["Swap.Nbd.Server"] = ["Swap.Nbd.Protocol", "Swap.BlockDevices", "Swap.Common"],
        ["Swap.Slabs"] = ["Swap.BlockDevices", "Swap.Daemon.Protocol", "Swap.Common"],
        ["Swap.Donor"] = ["Swap.Daemon.Protocol", "Swap.BlockDevices", "Swap.Common"],
        ["Swap.Server"] = ["Swap.Nbd.Server", "Swap.Slabs", "Swap.BlockDevices", "Swap.Common", "Swap.Nbd.Protocol", "Swap.Daemon.Protocol"],
        ["Swap.Nbd.Client"] = ["Swap.Nbd.Protocol", "Swap.Common"],
        ["Swap.MemTest"] = ["Swap.Common"],
        // Thin executables: Program.cs over one library each.
        ["Swap.Server.App"] = ["Swap.Server"],
        ["Swap.Slabs.Daemon"] = ["Swap.Donor"],
        ["Swap.Nbd.Client.App"] = ["Swap.Nbd.Client"],
        ["Swap.MemTest.App"] = ["Swap.MemTest"],
    };

    private static string RepositoryRoot
    {
        get
        {
            var directory = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "SwapNbd.sln")))
            {
                directory = directory.Parent;
            }

            return directory?.FullName ?? throw new InvalidOperationException("SwapNbd.sln not found above the test directory");
        }
    }

    private static IEnumerable<string> ProductProjects() =>
        Directory.EnumerateDirectories(RepositoryRoot, "Swap.*")
            .Select(d => Path.Combine(d, Path.GetFileName(d) + ".csproj"))
            .Where(File.Exists);

    private static string[] References(string csproj) =>
        XDocument.Load(csproj).Descendants("ProjectReference")
            .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value.Replace('\\', '/')))
            .ToArray();

    private static bool IsExe(string project) =>
        XDocument.Load(Path.Combine(RepositoryRoot, project, project + ".csproj")).Descendants("OutputType").Any(e => e.Value == "Exe");

    [Test]
    public void Every_project_references_only_the_layers_below_it()
    {
        var projects = ProductProjects().ToList();
        Assert.That(projects.Select(p => Path.GetFileNameWithoutExtension(p)), Is.EquivalentTo(Allowed.Keys), "every project has a row in Allowed");
        var violations = projects
            .SelectMany(p => References(p).Except(Allowed[Path.GetFileNameWithoutExtension(p)]).Select(r => $"{Path.GetFileNameWithoutExtension(p)} -> {r}"))
            .ToList();
        Assert.That(violations, Is.Empty, "references to a layer that is not below");
    }

    [Test]
    public void Nothing_references_an_executable()
    {
        var csprojs = ProductProjects().Concat(Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "tests"), "*.csproj", SearchOption.AllDirectories));
        var toExe = csprojs.SelectMany(p => References(p).Where(IsExe).Select(r => $"{Path.GetFileNameWithoutExtension(p)} -> {r}")).ToList();
        Assert.That(toExe, Is.Empty);
    }

    [TestCase("Swap.Nbd.Server", "Swap.Slabs")]
    [TestCase("Swap.Nbd.Server", "Swap.Donor")]
    [TestCase("Swap.Nbd.Server", "Polly.Core")]
    [TestCase("Swap.Slabs", "Swap.Nbd.Server")]
    [TestCase("Swap.Slabs", "Swap.Nbd.Protocol")]
    [TestCase("Swap.Slabs", "Swap.Donor")]
    [TestCase("Swap.Donor", "Swap.Slabs")]
    [TestCase("Swap.Donor", "Swap.Nbd.Protocol")]
    [TestCase("Swap.BlockDevices", "Swap.Nbd.Protocol")]
    [TestCase("Swap.Nbd.Client", "Swap.Nbd.Server")]
    public void The_compiled_assembly_does_not_reach_a_layer_it_must_not_know(string assembly, string forbidden)
    {
        // What the compiler emitted, followed transitively: a using that slipped past the project files shows here.
        var seen = new HashSet<string>();
        var queue = new Queue<AssemblyName>([new AssemblyName(assembly)]);
        while (queue.Count > 0)
        {
            var name = queue.Dequeue();
            if (!seen.Add(name.Name!) || !(name.Name!.StartsWith("Swap.", StringComparison.Ordinal) || name.Name == "Polly.Core"))
            {
                continue;
            }

            if (name.Name.StartsWith("Swap.", StringComparison.Ordinal))
            {
                foreach (var reference in Assembly.Load(name).GetReferencedAssemblies())
                {
                    queue.Enqueue(reference);
                }
            }
        }

        Assert.That(seen, Does.Not.Contain(forbidden));
    }

    [Test]
    public void No_two_namespaces_of_a_project_use_each_other()
    {
        var cycles = new List<string>();
        foreach (var csproj in ProductProjects())
        {
            var directory = Path.GetDirectoryName(csproj)!;
            var uses = new Dictionary<string, HashSet<string>>();
            foreach (var file in Directory.EnumerateFiles(directory, "*.cs", SearchOption.AllDirectories)
                         .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                                     && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
            {
                var text = File.ReadAllText(file);
                var ns = NamespaceLine().Match(text);
                if (!ns.Success)
                {
                    continue;
                }

                var own = ns.Groups[1].Value;
                var set = uses.TryGetValue(own, out var s) ? s : uses[own] = [];
                foreach (Match u in UsingLine().Matches(text))
                {
                    set.Add(u.Groups[1].Value);
                }
            }

            foreach (var (a, used) in uses)
            {
                foreach (var b in used.Where(b => b != a && uses.ContainsKey(b) && string.CompareOrdinal(a, b) < 0))
                {
                    if (uses[b].Contains(a))
                    {
                        cycles.Add($"{a} <-> {b}");
                    }
                }
            }
        }

        Assert.That(cycles, Is.Empty, "namespaces that use each other (one must be the lower layer)");
    }

    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"^using\s+(Swap[\w.]*)\s*;", RegexOptions.Multiline)]
    private static partial Regex UsingLine();
}
