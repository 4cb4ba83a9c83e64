using System.Net;

namespace Swap.Common.Configuration;

/// <summary>
/// --metrics-listen HOST:PORT: where the Prometheus text format is served (GET /metrics). A port of its own, 1 to
/// 65535 (the HTTP listener cannot pick one); loopback unless the scraper is elsewhere.
/// </summary>
public static class MetricsEndpoint
{
    /// <summary>The error for key <paramref name="key"/>, or null when <paramref name="text"/> is a usable endpoint.</summary>
    public static string? Check(string key, string text) =>
        TryParse(text, out _)
            ? null
            : $"{key}: '{text}' is not HOST:PORT with a port from 1 to 65535 (e.g. 127.0.0.1:9464 or [::1]:9464)";

    public static bool TryParse(string text, out IPEndPoint endpoint) => EndpointParser.TryParse(text, out endpoint) && endpoint.Port != 0;

    /// <summary>The host as an HTTP listener prefix wants it: an IPv6 address in brackets, any address as "+".</summary>
    public static string ListenerHost(IPEndPoint endpoint) =>
        endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any) ? "+"
        : endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]"
        : endpoint.Address.ToString();
}
