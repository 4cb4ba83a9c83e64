using NUnit.Framework;
using Swap.Nbd.Protocol;
using Swap.Nbd.Server.Transmission;

namespace Swap.Nbd.Tests.Server;

/// <summary>
/// Golden cases for the transmission phase's request checks: which error answers a request that is out of range,
/// misaligned, too large, of an unknown command or with flags the session does not allow.
/// </summary>
[Category(Tier.Unit), Parallelizable(ParallelScope.Self)]
public sealed class RequestValidatorTests
{
    private const ulong Size = 1 << 20;
    private const ulong Block = 4096;
    private const uint TooLarge = Swap.Nbd.Server.Hosting.NbdServerOptions.MaxPayload + 4096;

    // What a writable memory device with every capability advertises once structured replies are on.
    private const NbdTransmissionFlags Full = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua |
        NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendFastZero |
        NbdTransmissionFlags.SendCache | NbdTransmissionFlags.CanMultiConn | NbdTransmissionFlags.SendDf;

    private static NbdError Validate(NbdCommand command, NbdCommandFlags flags, ulong offset, uint length,
        NbdTransmissionFlags exportFlags = Full, bool structured = true, bool metaContext = true, ulong block = Block) =>
        RequestValidator.Validate(new NbdRequest(flags, command, 7, offset, length), exportFlags, structured, metaContext, Size, block);

    [TestCase(NbdCommand.Read, NbdCommandFlags.None, 0UL, 4096u)]
    [TestCase(NbdCommand.Read, NbdCommandFlags.Fua | NbdCommandFlags.Df, Size - 4096, 4096u)]
    [TestCase(NbdCommand.Read, NbdCommandFlags.None, Size, 0u)]
    [TestCase(NbdCommand.Write, NbdCommandFlags.Fua, 8192UL, 8192u)]
    [TestCase(NbdCommand.Flush, NbdCommandFlags.None, 0UL, 0u)]
    [TestCase(NbdCommand.Trim, NbdCommandFlags.Fua, 0UL, (uint)Size)]
    [TestCase(NbdCommand.WriteZeroes, NbdCommandFlags.NoHole | NbdCommandFlags.FastZero | NbdCommandFlags.Fua, 4096UL, 4096u)]
    [TestCase(NbdCommand.Cache, NbdCommandFlags.None, 0UL, 4096u)]
    [TestCase(NbdCommand.BlockStatus, NbdCommandFlags.ReqOne, 0UL, (uint)Size)]
    [TestCase(NbdCommand.Disconnect, NbdCommandFlags.PayloadLen, ulong.MaxValue, 1u)]
    public void A_request_within_the_export_with_allowed_flags_is_served(NbdCommand command, NbdCommandFlags flags, ulong offset, uint length) =>
        Assert.That(Validate(command, flags, offset, length), Is.EqualTo(NbdError.None));

    [TestCase(NbdCommand.Read, Size, 4096u, NbdError.Inval)]
    [TestCase(NbdCommand.Read, Size + 4096, 0u, NbdError.Inval)]
    [TestCase(NbdCommand.Read, Size - 4096, 8192u, NbdError.Inval)]
    [TestCase(NbdCommand.Write, Size, 4096u, NbdError.NoSpc)]
    [TestCase(NbdCommand.Write, Size - 4096, 8192u, NbdError.NoSpc)]
    [TestCase(NbdCommand.WriteZeroes, Size - 4096, 8192u, NbdError.NoSpc)]
    [TestCase(NbdCommand.Trim, 4096UL, uint.MaxValue - 4095, NbdError.Inval)]
    [TestCase(NbdCommand.Cache, ulong.MaxValue - 4095, 4096u, NbdError.Inval)]
    [TestCase(NbdCommand.BlockStatus, Size, 4096u, NbdError.Inval)]
    public void Out_of_range_is_NOSPC_for_data_writes_and_EINVAL_otherwise(NbdCommand command, ulong offset, uint length, NbdError expected) =>
        Assert.That(Validate(command, NbdCommandFlags.None, offset, length), Is.EqualTo(expected));

    [TestCase(NbdCommand.Read, 512UL, 4096u)]
    [TestCase(NbdCommand.Read, 0UL, 512u)]
    [TestCase(NbdCommand.Write, 4096UL, 4095u)]
    [TestCase(NbdCommand.Trim, 1UL, 4096u)]
    [TestCase(NbdCommand.WriteZeroes, 0UL, 100u)]
    [TestCase(NbdCommand.BlockStatus, 2048UL, 4096u)]
    public void Misaligned_to_the_minimum_block_size_is_EINVAL(NbdCommand command, ulong offset, uint length)
    {
        Assert.That(Validate(command, NbdCommandFlags.None, offset, length), Is.EqualTo(NbdError.Inval));
        Assert.That(Validate(command, NbdCommandFlags.None, offset, length, block: 1), Is.EqualTo(NbdError.None), "no alignment at block size 1");
    }

    [Test]
    public void Too_large_is_EINVAL_for_a_read_and_EOVERFLOW_for_a_write_before_the_range_is_looked_at()
    {
        Assert.That(Validate(NbdCommand.Read, NbdCommandFlags.None, 0, TooLarge), Is.EqualTo(NbdError.Inval));
        Assert.That(Validate(NbdCommand.Write, NbdCommandFlags.None, 0, TooLarge), Is.EqualTo(NbdError.Overflow));
        Assert.That(Validate(NbdCommand.Write, NbdCommandFlags.None, 0, TooLarge, exportFlags: Full | NbdTransmissionFlags.ReadOnly),
            Is.EqualTo(NbdError.Overflow), "size is checked before read-only");
        Assert.That(Validate(NbdCommand.Write, NbdCommandFlags.None, 0, Swap.Nbd.Server.Hosting.NbdServerOptions.MaxPayload),
            Is.EqualTo(NbdError.NoSpc), "the largest payload is not too large, only beyond the 1 MiB export");
    }

    [TestCase((NbdCommand)8)]
    [TestCase((NbdCommand)9)]
    [TestCase((NbdCommand)0xffff)]
    public void An_unknown_command_is_EINVAL(NbdCommand command) =>
        Assert.That(Validate(command, NbdCommandFlags.None, 0, 4096), Is.EqualTo(NbdError.Inval));

    [TestCase(NbdCommand.Read, NbdCommandFlags.NoHole)]
    [TestCase(NbdCommand.Read, NbdCommandFlags.ReqOne)]
    [TestCase(NbdCommand.Read, NbdCommandFlags.PayloadLen)]
    [TestCase(NbdCommand.Write, NbdCommandFlags.Df)]
    [TestCase(NbdCommand.Write, NbdCommandFlags.NoHole)]
    [TestCase(NbdCommand.Trim, NbdCommandFlags.NoHole)]
    [TestCase(NbdCommand.WriteZeroes, NbdCommandFlags.Df)]
    [TestCase(NbdCommand.Cache, NbdCommandFlags.Df)]
    [TestCase(NbdCommand.BlockStatus, NbdCommandFlags.Df)]
    [TestCase(NbdCommand.Flush, NbdCommandFlags.NoHole)]
    public void A_flag_the_command_does_not_take_is_EINVAL(NbdCommand command, NbdCommandFlags flags) =>
        Assert.That(Validate(command, flags, 0, command == NbdCommand.Flush ? 0u : 4096u), Is.EqualTo(NbdError.Inval));

    [Test]
    public void Flags_and_commands_the_session_did_not_negotiate_are_EINVAL()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Validate(NbdCommand.Read, NbdCommandFlags.Df, 0, 4096, structured: false), Is.EqualTo(NbdError.Inval), "DF without structured replies");
            Assert.That(Validate(NbdCommand.Write, NbdCommandFlags.Fua, 0, 4096, exportFlags: Full & ~NbdTransmissionFlags.SendFua), Is.EqualTo(NbdError.Inval), "FUA not advertised");
            Assert.That(Validate(NbdCommand.WriteZeroes, NbdCommandFlags.FastZero, 0, 4096, exportFlags: Full & ~NbdTransmissionFlags.SendFastZero), Is.EqualTo(NbdError.Inval), "FAST_ZERO not advertised");
            Assert.That(Validate(NbdCommand.WriteZeroes, NbdCommandFlags.None, 0, 4096, exportFlags: Full & ~NbdTransmissionFlags.SendWriteZeroes), Is.EqualTo(NbdError.Inval), "WRITE_ZEROES not advertised");
            Assert.That(Validate(NbdCommand.Trim, NbdCommandFlags.None, 0, 4096, exportFlags: Full & ~NbdTransmissionFlags.SendTrim), Is.EqualTo(NbdError.Inval), "TRIM not advertised");
            Assert.That(Validate(NbdCommand.Flush, NbdCommandFlags.None, 0, 0, exportFlags: Full & ~NbdTransmissionFlags.SendFlush), Is.EqualTo(NbdError.Inval), "FLUSH not advertised");
            Assert.That(Validate(NbdCommand.Flush, NbdCommandFlags.None, 4096, 0), Is.EqualTo(NbdError.Inval), "FLUSH with an offset");
            Assert.That(Validate(NbdCommand.Flush, NbdCommandFlags.None, 0, 4096), Is.EqualTo(NbdError.Inval), "FLUSH with a length");
            Assert.That(Validate(NbdCommand.BlockStatus, NbdCommandFlags.None, 0, 4096, structured: false), Is.EqualTo(NbdError.Inval), "BLOCK_STATUS without structured replies");
            Assert.That(Validate(NbdCommand.BlockStatus, NbdCommandFlags.None, 0, 4096, metaContext: false), Is.EqualTo(NbdError.Inval), "BLOCK_STATUS without base:allocation");
            Assert.That(Validate(NbdCommand.BlockStatus, NbdCommandFlags.None, 0, 0), Is.EqualTo(NbdError.Inval), "BLOCK_STATUS of nothing");
        });
    }

    [Test]
    public void Writes_to_a_read_only_export_are_EPERM_before_the_range_is_looked_at()
    {
        const NbdTransmissionFlags readOnly = Full | NbdTransmissionFlags.ReadOnly;
        Assert.Multiple(() =>
        {
            Assert.That(Validate(NbdCommand.Write, NbdCommandFlags.None, 0, 4096, exportFlags: readOnly), Is.EqualTo(NbdError.Perm));
            Assert.That(Validate(NbdCommand.Trim, NbdCommandFlags.None, 0, 4096, exportFlags: readOnly), Is.EqualTo(NbdError.Perm));
            Assert.That(Validate(NbdCommand.WriteZeroes, NbdCommandFlags.None, 0, 4096, exportFlags: readOnly), Is.EqualTo(NbdError.Perm));
            Assert.That(Validate(NbdCommand.Write, NbdCommandFlags.None, Size, 4096, exportFlags: readOnly), Is.EqualTo(NbdError.Perm), "beyond the end");
            Assert.That(Validate(NbdCommand.Read, NbdCommandFlags.None, 0, 4096, exportFlags: readOnly), Is.EqualTo(NbdError.None));
            Assert.That(Validate(NbdCommand.Flush, NbdCommandFlags.None, 0, 0, exportFlags: readOnly), Is.EqualTo(NbdError.None));
        });
    }
}
