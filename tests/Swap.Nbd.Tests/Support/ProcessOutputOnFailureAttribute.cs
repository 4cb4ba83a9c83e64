using System.Collections.Concurrent;
using NUnit.Framework;
using NUnit.Framework.Interfaces;

namespace Swap.Nbd.Tests.Support;

/// <summary>
/// Prints what every process a test started printed (<see cref="RunningExe"/>), once the test has failed: the output
/// is kept for each test and thrown away when it passes.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class ProcessOutputOnFailureAttribute : Attribute, ITestAction
{
    private static readonly ConcurrentDictionary<string, ConcurrentQueue<string>> Outputs = new();

    public ActionTargets Targets => ActionTargets.Test;

    /// <summary>Keeps <paramref name="output"/> of a process the current test ran, to print if the test fails.</summary>
    internal static void Keep(string title, string output)
    {
        var test = TestContext.CurrentContext.Test.ID;
        if (test is not null)
        {
            Outputs.GetOrAdd(test, _ => new()).Enqueue($"--- {title} ---\n{output}");
        }
    }

    public void BeforeTest(ITest test)
    {
    }

    public void AfterTest(ITest test)
    {
        if (Outputs.TryRemove(test.Id, out var outputs) && TestContext.CurrentContext.Result.Outcome.Status == TestStatus.Failed)
        {
            foreach (var output in outputs)
            {
                TestContext.Out.WriteLine(output);
            }
        }
    }
}
