//! Every Prometheus metric of SPEC §5, defined in one place; the names are a contract.
//!
//! The request path never looks a metric up by label: each pool and server holds the handles
//! it needs ([`PoolMetrics`], [`ServerMetrics`]), resolved when the server is configured, so
//! counting is an atomic add. Gauges that mirror live state (in flight, breaker, health) are
//! set from that state when `/metrics` is scraped.

use crate::config::Outcome;
use crate::upstream::breaker::BreakerState;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use std::sync::{LazyLock, OnceLock};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub attempts: IntCounterVec,
    pub in_flight: IntGaugeVec,
    pub retries: IntCounterVec,
    pub retries_over_budget: IntCounterVec,
    pub breaker_state: IntGaugeVec,
    pub breaker_transitions: IntCounterVec,
    pub healthy: IntGaugeVec,
    pub no_server: IntCounterVec,
    pub reloads: IntCounterVec,
    pub generation: IntGauge,
    pub last_reload_success: Gauge,
}

/// Histogram buckets for a proxy: 100 µs to 10 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

pub const OUTCOMES: [&str; 6] = [
    "success",
    "error",
    "timeout",
    "invalid_header",
    "http_5xx",
    "http_429",
];
pub const BREAKER_STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(m.clone()))
        .expect("metric registered once");
    m
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(m.clone()))
        .expect("metric registered once");
    m
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_request_duration_seconds",
                "Time from the request head to the end of the response, per upstream",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["upstream"],
        )
        .expect("valid metric definition");
        r.register(Box::new(duration.clone()))
            .expect("metric registered once");
        let generation = IntGauge::new(
            "switchyard_config_generation",
            "Generation of the running config (1 at start)",
        )
        .expect("valid metric definition");
        r.register(Box::new(generation.clone()))
            .expect("metric registered once");
        let last_reload_success = Gauge::new(
            "switchyard_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load",
        )
        .expect("valid metric definition");
        r.register(Box::new(last_reload_success.clone()))
            .expect("metric registered once");
        let m = Metrics {
            requests: counter_vec(
                &r,
                "switchyard_requests_total",
                "Requests answered, by upstream and the status sent to the client",
                &["upstream", "code"],
            ),
            duration,
            attempts: counter_vec(
                &r,
                "switchyard_upstream_attempts_total",
                "Attempts sent to servers, by outcome",
                &["upstream", "server", "outcome"],
            ),
            in_flight: gauge_vec(
                &r,
                "switchyard_upstream_in_flight",
                "Requests in flight to a server",
                &["upstream", "server"],
            ),
            retries: counter_vec(
                &r,
                "switchyard_retries_total",
                "Retries made, by the failure that caused them",
                &["upstream", "reason"],
            ),
            retries_over_budget: counter_vec(
                &r,
                "switchyard_retries_over_budget_total",
                "Retries not made because the retry budget was spent",
                &["upstream"],
            ),
            breaker_state: gauge_vec(
                &r,
                "switchyard_circuit_breaker_state",
                "1 for the current breaker state of a server, 0 for the others",
                &["upstream", "server", "state"],
            ),
            breaker_transitions: counter_vec(
                &r,
                "switchyard_circuit_breaker_transitions_total",
                "Breaker state changes, by the state entered",
                &["upstream", "server", "to"],
            ),
            healthy: gauge_vec(
                &r,
                "switchyard_upstream_healthy",
                "1 while a server passes its health checks",
                &["upstream", "server"],
            ),
            no_server: counter_vec(
                &r,
                "switchyard_no_server_total",
                "503 answers because no server of the pool was eligible",
                &["upstream"],
            ),
            reloads: counter_vec(
                &r,
                "switchyard_config_reloads_total",
                "Config reloads, by result",
                &["result"],
            ),
            generation,
            last_reload_success,
            registry: r,
        };
        for result in ["success", "failure"] {
            m.reloads.with_label_values(&[result]);
        }
        m
    }

    /// Drop every series of a server that left the configuration.
    pub fn forget_server(&self, pool: &str, addr: &str) {
        for outcome in OUTCOMES {
            let _ = self.attempts.remove_label_values(&[pool, addr, outcome]);
        }
        for state in BREAKER_STATES {
            let _ = self
                .breaker_state
                .remove_label_values(&[pool, addr, state.as_str()]);
            let _ = self
                .breaker_transitions
                .remove_label_values(&[pool, addr, state.as_str()]);
        }
        let _ = self.in_flight.remove_label_values(&[pool, addr]);
        let _ = self.healthy.remove_label_values(&[pool, addr]);
    }
}

/// The metric label of an attempt's outcome.
pub fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Error => "error",
        Outcome::Timeout => "timeout",
        Outcome::InvalidHeader => "invalid_header",
        Outcome::Status(429) => "http_429",
        Outcome::Status(_) => "http_5xx",
    }
}

/// Handles for one server, resolved once.
#[derive(Debug)]
pub struct ServerMetrics {
    attempts: [IntCounter; 6],
    pub in_flight: IntGauge,
    pub healthy: IntGauge,
    pub breaker_state: [IntGauge; 3],
}

impl ServerMetrics {
    pub fn new(pool: &str, addr: &str) -> ServerMetrics {
        let m = metrics();
        let s = ServerMetrics {
            attempts: OUTCOMES.map(|o| m.attempts.with_label_values(&[pool, addr, o])),
            in_flight: m.in_flight.with_label_values(&[pool, addr]),
            healthy: m.healthy.with_label_values(&[pool, addr]),
            breaker_state: BREAKER_STATES.map(|st| {
                m.breaker_state
                    .with_label_values(&[pool, addr, st.as_str()])
            }),
        };
        for st in BREAKER_STATES {
            m.breaker_transitions
                .with_label_values(&[pool, addr, st.as_str()]);
        }
        // Series exist from the moment a server is configured: closed and healthy.
        s.healthy.set(1);
        s.breaker_state[0].set(1);
        s
    }

    pub fn count_attempt(&self, o: Outcome) {
        let i = OUTCOMES
            .iter()
            .position(|l| *l == outcome_label(o))
            .unwrap_or(0);
        self.attempts[i].inc();
    }

    pub fn set_breaker(&self, state: BreakerState) {
        for (gauge, s) in self.breaker_state.iter().zip(BREAKER_STATES) {
            gauge.set(i64::from(s == state));
        }
    }
}

/// Handles for one pool, resolved once (request counters per status lazily).
#[derive(Debug)]
pub struct PoolMetrics {
    name: String,
    by_status: Vec<OnceLock<IntCounter>>,
    pub duration: prometheus::Histogram,
    pub no_server: IntCounter,
    pub retries_over_budget: IntCounter,
}

impl PoolMetrics {
    /// `retry_reasons`: the pool's `retry.on` conditions, whose retry counters start at 0.
    pub fn new(pool: &str, retry_reasons: &[String]) -> PoolMetrics {
        let m = metrics();
        for reason in retry_reasons {
            m.retries.with_label_values(&[pool, reason]);
        }
        PoolMetrics {
            name: pool.to_string(),
            by_status: (0..600).map(|_| OnceLock::new()).collect(),
            duration: m.duration.with_label_values(&[pool]),
            no_server: m.no_server.with_label_values(&[pool]),
            retries_over_budget: m.retries_over_budget.with_label_values(&[pool]),
        }
    }

    /// Count a request answered with `status` (0 when nothing could be sent).
    pub fn count_request(&self, status: u16) {
        match self.by_status.get(usize::from(status)) {
            Some(slot) => slot
                .get_or_init(|| {
                    metrics()
                        .requests
                        .with_label_values(&[self.name.as_str(), &status.to_string()])
                })
                .inc(),
            None => metrics()
                .requests
                .with_label_values(&[self.name.as_str(), &status.to_string()])
                .inc(),
        }
    }

    pub fn count_retry(&self, reason: Outcome) {
        let label = match reason {
            Outcome::Status(code) => format!("http_{code}"),
            other => outcome_label(other).to_string(),
        };
        metrics()
            .retries
            .with_label_values(&[self.name.as_str(), &label])
            .inc();
    }
}

/// Handles for requests that matched no route (`upstream=""`).
pub fn no_route() -> &'static PoolMetrics {
    static NO_ROUTE: LazyLock<PoolMetrics> = LazyLock::new(|| PoolMetrics::new("", &[]));
    &NO_ROUTE
}
