namespace Swap.MemTest;

/// <summary>The outcome of checking one page: fine, or what it holds instead and where it first differs.</summary>
public readonly record struct PageCheck(bool IsOk, PageHeader Found, int FirstBadByte, bool AllZero)
{
    public static PageCheck Ok => new(true, default, -1, false);

    public static PageCheck Mismatch(PageHeader found, int firstBadByte, bool zero) => new(false, found, firstBadByte, zero);

    /// <summary>One phrase for the operator: what the page holds compared with what it should.</summary>
    public string Describe(ulong seed, long index, uint version)
    {
        if (IsOk)
        {
            return "holds the expected data";
        }

        if (AllZero)
        {
            return "holds zeros (the data was lost)";
        }

        if (!Found.HasMagic)
        {
            return "holds no pattern at all (garbage)";
        }

        if (Found.Seed != seed)
        {
            return $"holds data of another run (seed {Found.Seed})";
        }

        if (Found.Index != index)
        {
            return $"holds page {Found.Index} version {Found.Version} (another page's data)";
        }

        if (Found.Version != version)
        {
            return Found.Version < version
                ? $"holds version {Found.Version}, expected {version} (a stale copy: a write was lost)"
                : $"holds version {Found.Version}, expected {version} (newer than written: the checker is wrong)";
        }

        return $"header right, data differs from byte {FirstBadByte} (corrupted)";
    }
}
