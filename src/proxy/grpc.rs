//! gRPC through `h2c` / `h2` pools (SPEC §13): what an answer's `grpc-status` means for the
//! attempt. A status listed as `grpc_N` in `retry.on` or `circuit_breaker.on` fails the
//! attempt; any other status is a success (NOT_FOUND is the caller's business, as a 404 is).
//! A trailers-only answer (the status in its head, gRPC's usual error form) is judged there and
//! can be retried; a status in the trailers after data is judged when they arrive, for the
//! breaker only (the answer has begun).

use crate::config::{GRPC_MAX_STATUS, Outcome, Upstream};
use http::HeaderMap;
use pingora::http::ResponseHeader;

/// The `grpc-status` in `headers`, if it is one.
pub(super) fn status(headers: &HeaderMap) -> Option<u8> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u8>().ok())
        .filter(|c| *c <= GRPC_MAX_STATUS)
}

/// Whether `pool` lists any `grpc_N` at all (otherwise gRPC answers are not looked at).
pub(super) fn watched(pool: &Upstream) -> bool {
    pool.retry.on.has_grpc_statuses() || pool.breaker.on.has_grpc_statuses()
}

/// The attempt's outcome for gRPC status `code`.
pub(super) fn outcome(pool: &Upstream, code: u8) -> Outcome {
    let o = Outcome::Grpc(code);
    if code != 0 && (pool.retry.on.contains(o) || pool.breaker.on.contains(o)) {
        o
    } else {
        Outcome::Success
    }
}

/// What an answer's head says, for a pool that watches gRPC statuses: `Some(outcome)` when
/// its head carries `grpc-status` (trailers-only); `None` when the status is still to come
/// in the trailers of a gRPC answer, so the attempt is judged then.
pub(super) enum Head {
    Judged(Outcome),
    InTrailers,
    NotGrpc,
}

pub(super) fn judge_head(pool: &Upstream, resp: &ResponseHeader) -> Head {
    if let Some(code) = status(&resp.headers) {
        return Head::Judged(outcome(pool, code));
    }
    let grpc = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"));
    if grpc && resp.status == http::StatusCode::OK {
        Head::InTrailers
    } else {
        Head::NotGrpc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutcomeSet;

    #[test]
    fn only_listed_statuses_fail() {
        let mut on = OutcomeSet::default();
        on.insert_name("grpc_14").unwrap();
        assert!(on.insert_name("grpc_17").is_err());
        assert!(on.insert_name("grpc_x").is_err());
        assert!(on.contains(Outcome::Grpc(14)));
        assert!(!on.contains(Outcome::Grpc(5)));
        assert_eq!(on.names(), ["grpc_14"]);
        let mut h = HeaderMap::new();
        h.insert("grpc-status", "14".parse().unwrap());
        assert_eq!(status(&h), Some(14));
        h.insert("grpc-status", "99".parse().unwrap());
        assert_eq!(status(&h), None);
    }
}
