//! Route policies (SPEC §8) as the request path uses them: the live state of each route (its
//! rate-limit buckets and rejection counters, kept across reloads by route name) and the pure
//! functions that turn a request into what is forwarded or answered.
//!
//! Order of checks on a matched route: allow/deny (403) -> rate limit (429) -> body limit
//! (413) -> redirect or rewrite -> forward.

pub mod rate;
pub mod real_ip;

use crate::config::{Config, FieldValue, HeaderOps, RateKey, Route, RoutePolicy, UpstreamMap};
use crate::vars::{self, Facts};
use pingora::http::{RequestHeader, ResponseHeader};
use rate::RateLimiter;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a route refused a request (the `reason` label and the access log's `rejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Denied,
    RateLimited,
    BodyTooLarge,
}

impl Rejection {
    pub const ALL: [Rejection; 3] = [
        Rejection::Denied,
        Rejection::RateLimited,
        Rejection::BodyTooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Denied => "denied",
            Rejection::RateLimited => "rate_limited",
            Rejection::BodyTooLarge => "body_too_large",
        }
    }
}

/// Rejections of one route, by reason.
#[derive(Debug, Default)]
pub struct Rejections([AtomicU64; 3]);

impl Rejections {
    pub fn count(&self, r: Rejection) {
        self.0[r as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, r: Rejection) -> u64 {
        self.0[r as usize].load(Relaxed)
    }
}

/// One route of a running state.
#[derive(Debug)]
pub struct RouteState {
    pub name: String,
    /// The route's path prefix (what `strip_prefix` removes).
    pub prefix: String,
    /// Index into the state's pools; `None` for a redirect, or when a map chooses the pool.
    pub pool: Option<usize>,
    /// `upstream: $MAP`.
    pub pool_map: Option<UpstreamMap>,
    pub policy: RoutePolicy,
    /// Whether the route does nothing but choose a pool (the request path skips the rest).
    pub plain: bool,
    pub limiter: Option<Arc<RateLimiter>>,
    pub rejections: Arc<Rejections>,
}

/// The routes of `config` (one unnamed route to the only pool when none are configured),
/// carrying rate-limit buckets (same name, same limit) and counters (same name) from
/// `previous`.
pub fn build(config: &Config, previous: &[RouteState]) -> Vec<RouteState> {
    let old: HashMap<&str, &RouteState> = previous.iter().map(|r| (r.name.as_str(), r)).collect();
    let make = |route: &Route| {
        let before = old.get(route.name.as_str());
        let limiter = route.policy.rate_limit.as_ref().map(|rl| {
            match before.filter(|b| b.policy.rate_limit.as_ref() == Some(rl)) {
                Some(b) => b.limiter.clone(),
                None => None,
            }
            .unwrap_or_else(|| {
                Arc::new(RateLimiter::new(
                    rl.requests,
                    rl.per,
                    rl.burst,
                    rate::MAX_KEYS,
                ))
            })
        });
        RouteState {
            name: route.name.clone(),
            prefix: route.path.prefix().to_string(),
            pool: route.upstream,
            pool_map: route.upstream_map.clone(),
            plain: route.policy.is_plain(),
            policy: route.policy.clone(),
            limiter,
            rejections: before.map_or_else(Default::default, |b| Arc::clone(&b.rejections)),
        }
    };
    if config.routes.is_empty() {
        if config.upstreams.is_empty() {
            return Vec::new();
        }
        return vec![make(&Route {
            name: "/".to_string(),
            host: crate::config::HostMatch::Any,
            path: crate::config::PathMatch::Prefix {
                prefix: "/".to_string(),
                stop_regex: false,
            },
            listeners: Vec::new(),
            conditions: None,
            upstream: Some(0),
            upstream_map: None,
            policy: RoutePolicy::default(),
        })];
    }
    config.routes.iter().map(make).collect()
}

/// The rate-limit key of a request; `None` when the request has none (no such header): such
/// requests are not limited by that key.
pub fn rate_key<'a>(
    key: &RateKey,
    req: &'a RequestHeader,
    client: Option<IpAddr>,
) -> Option<Cow<'a, [u8]>> {
    match key {
        RateKey::ClientIp => client.map(|ip| match ip {
            IpAddr::V4(v4) => Cow::Owned(v4.octets().to_vec()),
            IpAddr::V6(v6) => Cow::Owned(v6.octets().to_vec()),
        }),
        RateKey::Header(name) => req.headers.get(name).map(|v| Cow::Borrowed(v.as_bytes())),
    }
}

/// `Retry-After` for a wait: whole seconds, at least 1.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl RouteState {
    /// The pool for a request: the route's, or the one its map names.
    pub fn pool_for(&self, facts: &Facts<'_>) -> Option<usize> {
        match (&self.pool_map, self.pool) {
            (Some(m), _) => {
                let map = facts.maps.get(m.map)?;
                m.pools.get(map.choose_for(facts)).copied()
            }
            (None, pool) => pool,
        }
    }
}

/// The target sent upstream: `raw` (path and query, origin form) with the route's prefix
/// stripped and its rewrite applied to the path; the query is kept. `None` when nothing
/// changes.
pub fn upstream_target(route: &RouteState, raw: &str, facts: &Facts<'_>) -> Option<String> {
    let p = &route.policy;
    if !p.strip_prefix && p.rewrite.is_none() {
        return None;
    }
    let (path, query) = match raw.split_once('?') {
        Some((path, q)) => (path, Some(q)),
        None => (raw, None),
    };
    let mut path: Cow<'_, str> = Cow::Borrowed(path);
    if p.strip_prefix {
        // `/api/` strips `/api`, keeping the slash; what remains always starts with `/`.
        let prefix = route.prefix.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix(prefix) {
            path = if rest.starts_with('/') {
                Cow::Owned(rest.to_string())
            } else {
                Cow::Owned(format!("/{rest}"))
            };
        }
    }
    if let Some(rw) = &p.rewrite
        && let Some(groups) = rw.from.captures(&path)
    {
        // What `from` matched is replaced by `to`, its groups and variables filled in.
        let whole = groups.get(0).map_or(0..0, |m| m.range());
        let mut new = String::with_capacity(path.len() + 16);
        new.push_str(&path[..whole.start]);
        rw.to.render_into(facts, Some(&groups), &mut new);
        new.push_str(&path[whole.end..]);
        path = Cow::Owned(new);
    }
    let mut out = path.into_owned();
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    if let Some(q) = query {
        // nginx: arguments are appended, after `&` when the rewrite added its own.
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(q);
    }
    Some(out)
}

/// A field's value for a request; `None` when it renders empty (the field is removed).
pub fn field_value(value: &FieldValue, facts: &Facts<'_>) -> Option<http::HeaderValue> {
    match value {
        FieldValue::Fixed(v) => Some(v.clone()),
        FieldValue::Template(t) => {
            let text = t.render(facts);
            (!text.is_empty()).then(|| vars::header_value(&text))
        }
    }
}

/// Apply `ops` to a request head (after switchyard's own headers).
pub fn apply_to_request(
    ops: &HeaderOps,
    req: &mut RequestHeader,
    facts: &Facts<'_>,
) -> pingora::Result<()> {
    for name in &ops.remove {
        req.remove_header(name);
    }
    for (name, value) in &ops.set {
        match field_value(value, facts) {
            Some(v) => {
                req.insert_header(name.clone(), v)?;
            }
            None => {
                req.remove_header(name);
            }
        }
    }
    Ok(())
}

/// Apply `ops` to a response head.
pub fn apply_to_response(
    ops: &HeaderOps,
    resp: &mut ResponseHeader,
    facts: &Facts<'_>,
) -> pingora::Result<()> {
    for name in &ops.remove {
        resp.remove_header(name);
    }
    for (name, value) in &ops.set {
        match field_value(value, facts) {
            Some(v) => {
                resp.insert_header(name.clone(), v)?;
            }
            None => {
                resp.remove_header(name);
            }
        }
    }
    Ok(())
}

/// Smallest body `compress` touches.
pub const MIN_COMPRESS: u64 = 1024;

/// Whether a response of a `compress` route may be compressed: not a `206`, not already
/// encoded, not a known length under 1 KiB, and with a body.
pub fn compressible(resp: &ResponseHeader, head_request: bool) -> bool {
    let status = resp.status.as_u16();
    if head_request || status == 206 || status == 204 || status == 304 || status < 200 {
        return false;
    }
    if resp.headers.contains_key(http::header::CONTENT_ENCODING) {
        return false;
    }
    let small = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n < MIN_COMPRESS);
    !small
}

/// The compression context of one response: gzip (level 6, nginx's common setting) or brotli
/// (level 5, a dynamic-content setting), whichever the client lists first; zstd is not offered.
pub fn compression_ctx(
    req: &RequestHeader,
) -> pingora::protocols::http::compression::ResponseCompressionCtx {
    use pingora::protocols::http::compression::{Algorithm, ResponseCompressionCtx};
    let mut ctx = ResponseCompressionCtx::new(6, false, false);
    ctx.adjust_algorithm_level(Algorithm::Brotli, 5);
    ctx.adjust_algorithm_level(Algorithm::Zstd, 0);
    ctx.request_filter(req);
    ctx
}

#[cfg(test)]
mod tests;
