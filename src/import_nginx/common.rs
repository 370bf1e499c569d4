//! Directives valid at http, server or location level (`common`), and the check of size
//! and time values that every level shares.

use super::*;

/// Why the value of a size or time directive cannot be translated (`None`: it can, or the
/// directive takes neither).
pub(super) fn bad_value(d: &Directive) -> Option<String> {
    use crate::config::units::{parse_duration, parse_size};
    let (at, size) = match d.name.as_str() {
        "client_max_body_size" => (0, true),
        "large_client_header_buffers" => (1, true),
        "client_header_timeout"
        | "client_body_timeout"
        | "send_timeout"
        | "keepalive_timeout"
        | "proxy_connect_timeout"
        | "proxy_read_timeout"
        | "proxy_send_timeout"
        | "proxy_next_upstream_timeout" => (0, false),
        _ => return None,
    };
    let v = d.args.get(at)?;
    let ok = if size {
        parse_size(v).is_ok()
    } else {
        parse_duration(&duration(v)).is_ok()
    };
    (!ok).then(|| format!("`{v}` is not a {}", if size { "size" } else { "time" }))
}

/// A size or time directive whose value cannot be translated is reported, and
/// `client_max_body_size 0` (nginx: no check) noted; `true` when the directive is done with.
pub(super) fn settled_value(out: &mut Out, d: &Directive) -> bool {
    if let Some(why) = bad_value(d) {
        out.skip(d, why);
        return true;
    }
    if d.name == "client_max_body_size" && d.args.first().is_some_and(|a| a == "0") {
        out.note(
            d,
            "0 turns nginx's check off: switchyard has no limit by default",
            false,
        );
        return true;
    }
    false
}

/// Directives valid at http, server or location level. `route`: the location's route.
pub(super) fn common(out: &mut Out, d: &Directive, mut route: Option<&mut Route>) {
    let a0 = d.args.first().cloned().unwrap_or_default();
    if settled_value(out, d) {
        return;
    }
    if transport::transport_directive(out, d, route.as_deref_mut()) {
        return;
    }
    match d.name.as_str() {
        "access_log" => {
            out.access_log = Some(if a0 == "off" {
                "off".into()
            } else {
                a0.clone()
            });
            if d.args.len() > 1 && d.args[1] != "combined" {
                out.note(
                    d,
                    "the log format is switchyard's `json` (or `combined`)",
                    false,
                );
            }
        }
        "client_max_body_size" => match route {
            Some(r) => r.max_body = Some(a0),
            None => {
                out.limits.insert("max_body_bytes", a0);
            }
        },
        "client_header_timeout" => {
            out.limits.insert("header_read_timeout", duration(&a0));
        }
        "client_body_timeout" => {
            out.limits.insert("body_read_timeout", duration(&a0));
        }
        "send_timeout" => {
            out.limits.insert("send_timeout", duration(&a0));
        }
        "keepalive_timeout" => {
            out.limits.insert("keepalive_timeout", duration(&a0));
        }
        "large_client_header_buffers" => {
            if let Some(size) = d.args.get(1) {
                out.limits.insert("max_header_bytes", size.clone());
            }
        }
        "include" => missing_include(out, d),
        "open_file_cache"
        | "open_file_cache_valid"
        | "open_file_cache_min_uses"
        | "open_file_cache_errors" => out.note(
            d,
            "switchyard keeps served files open for `static.open_file_cache` (1s by default)",
            false,
        ),
        n if NOT_NEEDED.contains(&n) => out.note(d, "not needed by switchyard", false),
        _ => out.skip(d, "no switchyard equivalent"),
    }
}
