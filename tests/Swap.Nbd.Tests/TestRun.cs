using NUnit.Framework;
using Swap.Nbd.Tests.Support;

namespace Swap.Nbd.Tests;

/// <summary>What the whole run sets up once and takes down at its end: the run's cluster key (<see cref="TestKeys"/>).</summary>
[SetUpFixture]
public sealed class TestRun
{
    [OneTimeTearDown]
    public void RemoveKeys() => TestKeys.Remove();
}
