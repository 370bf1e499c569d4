//! Every Prometheus metric of SPEC §5, defined in one place; the names are a contract.
//!
//! Metrics are a view of the state: the request path and the upstream core only add to plain
//! atomic counters (`crate::upstream::counters`, server and pool stats, reload stats), and
//! [`StateCollector`] turns the *current* runtime state into series when `/metrics` is scraped.
//! So a server's series exist from the moment it is configured and disappear with it, by
//! construction, and nothing on the request path looks up a labelled series.

use crate::policy::Rejection;
use crate::reload::ReloadStats;
use crate::state::{RuntimeState, Store};
use crate::upstream::PoolStats;
use crate::upstream::breaker::BreakerState;
use crate::upstream::counters::{DURATION_BUCKETS, HistogramSnapshot, OUTCOMES, RetryReasons};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily};
use prometheus::{Encoder, Registry};
use std::sync::Arc;
use std::time::Instant;

mod families;

use families::{FAMILIES, Family};

/// The series of each family gathered during one scrape.
struct Series([Vec<Metric>; FAMILIES.len()]);

impl Series {
    fn push(&mut self, family: Family, m: Metric) {
        self.0[family as usize].push(m);
    }
}

/// Reads the live state and the reload counters into metric families at scrape time.
pub struct StateCollector {
    store: Store,
    reloads: Arc<ReloadStats>,
    descs: Vec<Desc>,
}

impl StateCollector {
    pub fn new(store: Store, reloads: Arc<ReloadStats>) -> StateCollector {
        let descs = FAMILIES
            .iter()
            .map(|(_, name, help, _, labels)| {
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    labels.iter().map(ToString::to_string).collect(),
                    Default::default(),
                )
                .expect("valid metric definition")
            })
            .collect();
        StateCollector {
            store,
            reloads,
            descs,
        }
    }
}

/// The exposition of a registry holding one [`StateCollector`].
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(store: Store, reloads: Arc<ReloadStats>) -> Metrics {
        let registry = Registry::new();
        registry
            .register(Box::new(StateCollector::new(store, reloads)))
            .expect("metric families registered once");
        Metrics { registry }
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("cannot encode metrics: {e}");
        }
        out
    }
}

/// Label pairs sorted by name, as the Prometheus client's own vectors emit them.
fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    let mut pairs = pairs.to_vec();
    pairs.sort_unstable_by_key(|(k, _)| *k);
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn counter(pairs: &[(&str, &str)], v: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v as f64);
    let mut m = Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::from_gauge(g);
    m.set_label(labels(pairs));
    m
}

fn histogram(pairs: &[(&str, &str)], s: &HistogramSnapshot) -> Metric {
    let mut h = Histogram::default();
    h.set_sample_count(s.count);
    h.set_sample_sum(s.sum_seconds);
    h.set_bucket(
        DURATION_BUCKETS
            .iter()
            .zip(&s.cumulative)
            .map(|(bound, n)| {
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(*n);
                b
            })
            .collect(),
    );
    let mut m = Metric::from_label(labels(pairs));
    m.set_histogram(h);
    m
}

/// The series of one pool's counters (`name` "" for requests that matched no route).
fn pool_series(out: &mut Series, name: &str, stats: &PoolStats, retry_on: &[String]) {
    for (status, n) in stats.statuses.nonzero() {
        out.push(
            Family::Requests,
            counter(&[("upstream", name), ("code", &status.to_string())], n),
        );
    }
    out.push(
        Family::RequestDuration,
        histogram(&[("upstream", name)], &stats.duration.snapshot()),
    );
    // Every reason listed in `retry.on` has a series from the start; others once counted.
    let mut reasons: Vec<(String, u64)> = stats
        .retries
        .nonzero()
        .map(|(o, n)| (RetryReasons::label(o), n))
        .collect();
    for r in retry_on {
        if !reasons.iter().any(|(l, _)| l == r) {
            reasons.push((r.clone(), 0));
        }
    }
    for (reason, n) in reasons {
        out.push(
            Family::Retries,
            counter(&[("upstream", name), ("reason", &reason)], n),
        );
    }
}

/// Handshakes, certificate expiry and requests by protocol (SPEC §6).
fn edge_series(out: &mut Series, state: &RuntimeState) {
    use std::sync::atomic::Ordering::Relaxed;
    let e = &state.edge;
    out.push(
        Family::TlsHandshakes,
        counter(&[("result", "success")], e.handshakes_ok.load(Relaxed)),
    );
    out.push(
        Family::TlsHandshakes,
        counter(&[("result", "failure")], e.handshakes_failed.load(Relaxed)),
    );
    let mut seen = std::collections::HashSet::new();
    for cert in state.certificates() {
        let path = cert.cert_path.display().to_string();
        if seen.insert(path.clone()) {
            let at = cert
                .not_after
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            out.push(Family::CertificateExpiry, gauge(&[("cert", &path)], at));
        }
    }
    out.push(
        Family::DownstreamRequests,
        counter(&[("protocol", "http/1.1")], e.requests_h1.sum() as u64),
    );
    out.push(
        Family::DownstreamRequests,
        counter(&[("protocol", "h2")], e.requests_h2.sum() as u64),
    );
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let state: Arc<RuntimeState> = self.store.load_full();
        let now = Instant::now();
        let mut out = Series(Default::default());
        for pool in &state.pools {
            let name = pool.name.as_str();
            pool_series(&mut out, name, &pool.stats, &pool.config.retry.on.names());
            out.push(
                Family::RetriesOverBudget,
                counter(&[("upstream", name)], pool.stats.retries_over_budget()),
            );
            out.push(
                Family::NoServer,
                counter(&[("upstream", name)], pool.stats.no_server()),
            );
            {
                let st = &pool.stats;
                for (i, direction) in ["request", "response"].into_iter().enumerate() {
                    for (result, n) in [
                        ("whole", &st.buffered_whole[i]),
                        ("streamed", &st.buffered_overflowed[i]),
                    ] {
                        out.push(
                            Family::Buffered,
                            counter(
                                &[
                                    ("upstream", name),
                                    ("direction", direction),
                                    ("result", result),
                                ],
                                n.load(std::sync::atomic::Ordering::Relaxed),
                            ),
                        );
                    }
                }
            }
            for s in &pool.servers {
                let addr = s.config.addr.as_str();
                let st = &s.stats;
                for (outcome, n) in OUTCOMES.iter().zip(st.outcomes()) {
                    out.push(
                        Family::Attempts,
                        counter(
                            &[("upstream", name), ("server", addr), ("outcome", outcome)],
                            n,
                        ),
                    );
                }
                out.push(
                    Family::InFlight,
                    gauge(
                        &[("upstream", name), ("server", addr)],
                        f64::from(st.in_flight()),
                    ),
                );
                let current = st.breaker.state(now);
                for b in BreakerState::ALL {
                    let l = [("upstream", name), ("server", addr), ("state", b.as_str())];
                    out.push(
                        Family::BreakerState,
                        gauge(&l, f64::from(u8::from(b == current))),
                    );
                    let l = [("upstream", name), ("server", addr), ("to", b.as_str())];
                    out.push(Family::BreakerTransitions, counter(&l, st.transitions(b)));
                }
                out.push(
                    Family::Healthy,
                    gauge(
                        &[("upstream", name), ("server", addr)],
                        f64::from(u8::from(st.is_healthy())),
                    ),
                );
            }
        }
        if state.no_route.duration.snapshot().count > 0 {
            pool_series(&mut out, "", &state.no_route, &[]);
        }
        if state.static_files.duration.snapshot().count > 0 {
            pool_series(&mut out, "static", &state.static_files, &[]);
        }
        let (ok, failed) = self.reloads.counts();
        out.push(Family::Reloads, counter(&[("result", "success")], ok));
        out.push(Family::Reloads, counter(&[("result", "failure")], failed));
        out.push(Family::Generation, gauge(&[], state.generation as f64));
        out.push(
            Family::LastReloadSuccess,
            gauge(&[], self.reloads.last_success_unix()),
        );
        edge_series(&mut out, &state);
        for (pool, name, ok, failed, empty) in state.discovery.counts() {
            for (result, n) in [("success", ok), ("failure", failed), ("empty", empty)] {
                out.push(
                    Family::DnsResolutions,
                    counter(
                        &[("upstream", &pool), ("name", &name), ("result", result)],
                        n,
                    ),
                );
            }
        }
        for pool in &state.pools {
            out.push(
                Family::UpstreamServers,
                gauge(&[("upstream", &pool.name)], pool.servers.len() as f64),
            );
        }
        for route in &state.routes {
            for why in Rejection::ALL {
                out.push(
                    Family::RouteRejections,
                    counter(
                        &[("route", &route.name), ("reason", why.as_str())],
                        route.rejections.get(why),
                    ),
                );
            }
        }

        FAMILIES
            .iter()
            .zip(out.0)
            .map(|((_, name, help, ty, _), metrics)| {
                let mut f = MetricFamily::default();
                f.set_name(name.to_string());
                f.set_help(help.to_string());
                f.set_field_type(*ty);
                f.set_metric(metrics);
                f
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_at_its_own_index() {
        for (i, f) in FAMILIES.iter().enumerate() {
            assert_eq!(f.0 as usize, i, "{} is out of place in FAMILIES", f.1);
        }
    }
}
