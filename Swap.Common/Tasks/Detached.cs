using System.Runtime.CompilerServices;

namespace Swap.Common.Tasks;

/// <summary>
/// What an async method nobody awaits returns (instead of <c>async void</c> or a discarded Task): its box comes from
/// and goes back to the free lists of <see cref="RetainedValueTaskMethodBuilder{TResult}"/> when the method ends, so
/// starting one allocates nothing once warm. An exception escaping such a method ends the process, as from
/// <c>async void</c>: catch everything inside.
/// </summary>
[AsyncMethodBuilder(typeof(DetachedMethodBuilder))]
public readonly struct Detached;
