//! Every series family of SPEC §5: name, help, type and labels. The names are a contract.

use prometheus::proto::MetricType;

/// The series families, in the order of [`FAMILIES`] (and of the exposition).
#[derive(Debug, Clone, Copy)]
pub(super) enum Family {
    /// `switchyard_requests_total`
    Requests,
    /// `switchyard_request_duration_seconds`
    RequestDuration,
    /// `switchyard_upstream_attempts_total`
    Attempts,
    /// `switchyard_upstream_in_flight`
    InFlight,
    /// `switchyard_retries_total`
    Retries,
    /// `switchyard_retries_over_budget_total`
    RetriesOverBudget,
    /// `switchyard_circuit_breaker_state`
    BreakerState,
    /// `switchyard_circuit_breaker_transitions_total`
    BreakerTransitions,
    /// `switchyard_upstream_healthy`
    Healthy,
    /// `switchyard_no_server_total`
    NoServer,
    /// `switchyard_config_reloads_total`
    Reloads,
    /// `switchyard_config_generation`
    Generation,
    /// `switchyard_config_last_reload_success_timestamp_seconds`
    LastReloadSuccess,
    /// `switchyard_tls_handshakes_total`
    TlsHandshakes,
    /// `switchyard_tls_certificate_expiry_timestamp_seconds`
    CertificateExpiry,
    /// `switchyard_downstream_requests_total`
    DownstreamRequests,
    /// `switchyard_route_rejections_total`
    RouteRejections,
    /// `switchyard_dns_resolutions_total`
    DnsResolutions,
    /// `switchyard_upstream_servers`
    UpstreamServers,
    /// `switchyard_upstream_buffered_total`
    Buffered,
}

/// (name, help, type, labels) of every series family, in [`Family`] order.
pub(super) const FAMILIES: [(Family, &str, &str, MetricType, &[&str]); 20] = [
    (
        Family::Requests,
        "switchyard_requests_total",
        "Requests answered, by upstream and the status sent to the client",
        MetricType::COUNTER,
        &["upstream", "code"],
    ),
    (
        Family::RequestDuration,
        "switchyard_request_duration_seconds",
        "Time from the request head to the end of the response, per upstream",
        MetricType::HISTOGRAM,
        &["upstream"],
    ),
    (
        Family::Attempts,
        "switchyard_upstream_attempts_total",
        "Attempts sent to servers, by outcome",
        MetricType::COUNTER,
        &["upstream", "server", "outcome"],
    ),
    (
        Family::InFlight,
        "switchyard_upstream_in_flight",
        "Requests in flight to a server",
        MetricType::GAUGE,
        &["upstream", "server"],
    ),
    (
        Family::Retries,
        "switchyard_retries_total",
        "Retries made, by the failure that caused them",
        MetricType::COUNTER,
        &["upstream", "reason"],
    ),
    (
        Family::RetriesOverBudget,
        "switchyard_retries_over_budget_total",
        "Retries not made because the retry budget was spent",
        MetricType::COUNTER,
        &["upstream"],
    ),
    (
        Family::BreakerState,
        "switchyard_circuit_breaker_state",
        "1 for the current breaker state of a server, 0 for the others",
        MetricType::GAUGE,
        &["upstream", "server", "state"],
    ),
    (
        Family::BreakerTransitions,
        "switchyard_circuit_breaker_transitions_total",
        "Breaker state changes, by the state entered",
        MetricType::COUNTER,
        &["upstream", "server", "to"],
    ),
    (
        Family::Healthy,
        "switchyard_upstream_healthy",
        "1 while a server passes its health checks",
        MetricType::GAUGE,
        &["upstream", "server"],
    ),
    (
        Family::NoServer,
        "switchyard_no_server_total",
        "503 answers because no server of the pool was eligible",
        MetricType::COUNTER,
        &["upstream"],
    ),
    (
        Family::Reloads,
        "switchyard_config_reloads_total",
        "Config reloads, by result",
        MetricType::COUNTER,
        &["result"],
    ),
    (
        Family::Generation,
        "switchyard_config_generation",
        "Generation of the running config (1 at start)",
        MetricType::GAUGE,
        &[],
    ),
    (
        Family::LastReloadSuccess,
        "switchyard_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful config load",
        MetricType::GAUGE,
        &[],
    ),
    (
        Family::TlsHandshakes,
        "switchyard_tls_handshakes_total",
        "TLS handshakes with clients, by result",
        MetricType::COUNTER,
        &["result"],
    ),
    (
        Family::CertificateExpiry,
        "switchyard_tls_certificate_expiry_timestamp_seconds",
        "Unix time at which a served certificate expires, by certificate file",
        MetricType::GAUGE,
        &["cert"],
    ),
    (
        Family::DownstreamRequests,
        "switchyard_downstream_requests_total",
        "Client requests, by protocol",
        MetricType::COUNTER,
        &["protocol"],
    ),
    (
        Family::RouteRejections,
        "switchyard_route_rejections_total",
        "Requests a route refused, by reason",
        MetricType::COUNTER,
        &["route", "reason"],
    ),
    (
        Family::DnsResolutions,
        "switchyard_dns_resolutions_total",
        "DNS lookups of server entries with `resolve`, by result",
        MetricType::COUNTER,
        &["upstream", "name", "result"],
    ),
    (
        Family::UpstreamServers,
        "switchyard_upstream_servers",
        "Servers in the pool now (configured and found in DNS)",
        MetricType::GAUGE,
        &["upstream"],
    ),
    (
        Family::Buffered,
        "switchyard_upstream_buffered_total",
        "Request bodies and answers held in memory by `buffering`: whole, or outgrown and streamed",
        MetricType::COUNTER,
        &["upstream", "direction", "result"],
    ),
];
