namespace Swap.Common.Configuration;

/// <summary>
/// One setting of swapnbd-server or swapnbd-daemon, declared once: its key (JSON, environment), its switch, default,
/// help and how its value is read onto the program's options (validation stays with the options type, which
/// embedders and tests build directly).
/// </summary>
/// <param name="Bind">Reads the key with <see cref="SettingsReader"/> onto the options; null for a key read
/// elsewhere (Config by <see cref="SettingsReader.Build"/>, LogLevel by <see cref="SettingsReader.GetLogLevel"/>).</param>
public sealed record SettingSpec<TOptions>(string Key, string Switch, string? Value, string Default, string? Help, Action<SettingsReader, string, TOptions>? Bind)
    : OptionSpec(Switch, Value, Default, Help);
