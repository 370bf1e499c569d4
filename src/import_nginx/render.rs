//! The switchyard YAML written by `import-nginx`, with a comment per pool and route naming the nginx block it came from.

use super::*;

/// Whether `value` is what switchyard does anyway for `key` (`config/defaults.rs`): such a
/// setting is left out of the YAML, which then shows only what differs.
fn is_default(key: &str, value: &str) -> bool {
    use crate::config::units::{parse_duration, parse_size};
    let Some(d) = crate::config::defaults::of(key) else {
        return false;
    };
    match d.value {
        crate::config::defaults::Value::Duration(v) => parse_duration(value) == Ok(v),
        crate::config::defaults::Value::Size(v) => parse_size(value) == Ok(v),
        _ => value == d.text,
    }
}

pub(super) fn render(out: &Out) -> String {
    let mut y = String::new();
    y.push_str(
        "# Imported from nginx by `switchyard import-nginx`; check it with `switchyard check`.\n",
    );
    y.push_str("# What could not be carried over was reported on stderr.\n");
    y.push_str("listen:\n");
    if out.listeners.is_empty() {
        y.push_str("  - \"0.0.0.0:80\"\n");
    }
    // Listeners get names when routes differ in which of them they serve (servers on
    // different addresses); a route serving all of them needs no `listeners`.
    let routable: Vec<&String> = out
        .listeners
        .iter()
        .filter(|(_, l)| !l.redirect_only)
        .map(|(a, _)| a)
        .collect();
    let serves_all = |r: &Route| routable.iter().all(|a| r.listeners.contains(a));
    let scoped = out.routes.iter().any(|r| !serves_all(r));
    let name_of = |addr: &str| listener_name(addr, &out.listeners);
    for (addr, l) in &out.listeners {
        let name = if scoped {
            format!("\n    name: {}", name_of(addr))
        } else {
            String::new()
        };
        let name = if l.proxy_protocol {
            format!("{name}\n    proxy_protocol: true")
        } else {
            name
        };
        if l.ssl {
            let _ = writeln!(y, "  - addr: {}{name}", yaml_str(addr));
            y.push_str("    tls:\n      certificates:\n");
            for (c, k) in &l.certs {
                let _ = writeln!(
                    y,
                    "        - {{cert: {}, key: {}}}",
                    yaml_str(c),
                    yaml_str(k)
                );
            }
            if let Some(v) = &l.min_version {
                let _ = writeln!(y, "      min_version: \"{v}\"");
            }
            let _ = writeln!(y, "    http2: {}", l.http2);
        } else if l.redirect_only {
            let _ = writeln!(
                y,
                "  - addr: {}{name}\n    redirect_https: true",
                yaml_str(addr)
            );
        } else if scoped || l.proxy_protocol {
            let _ = writeln!(y, "  - addr: {}{name}", yaml_str(addr));
        } else {
            let _ = writeln!(y, "  - {}", yaml_str(addr));
        }
    }
    if let Some(t) = &out.threads {
        let _ = writeln!(y, "threads: {t}");
    }
    if let Some(a) = &out.access_log {
        let _ = writeln!(y, "access_log: {}", yaml_str(a));
        if a != "off" && a != "stdout" {
            y.push_str("access_log_format: combined\n");
        }
    }
    let real_ip = &out.real_ip;
    if !real_ip.from.is_empty() {
        let from: Vec<String> = real_ip.from.iter().map(|f| yaml_str(f)).collect();
        // nginx's `real_ip_header` defaults to X-Real-IP; switchyard's to X-Forwarded-For.
        let header = real_ip.header.as_deref().unwrap_or("X-Real-IP");
        let _ = writeln!(
            y,
            "real_ip:\n  from: [{}]\n  header: {}",
            from.join(", "),
            yaml_str(header)
        );
        if real_ip.recursive == Some(true) && header.eq_ignore_ascii_case("x-forwarded-for") {
            y.push_str("  recursive: true\n");
        }
    }
    if !out.limits.is_empty() {
        y.push_str("limits:\n");
        for (k, v) in &out.limits {
            if !is_default(&format!("limits.{k}"), v) {
                let _ = writeln!(y, "  {k}: {}", yaml_str(v));
            }
        }
    }
    if !out.pools.is_empty() {
        y.push_str("upstreams:\n");
    }
    for (name, p) in &out.pools {
        if !p.origin.is_empty() {
            let _ = writeln!(y, "  # {}", p.origin);
        }
        let _ = writeln!(y, "  {name}:");
        if let Some(b) = &p.balance {
            let _ = writeln!(y, "    balance: {b}");
        }
        if let Some(k) = &p.hash_key {
            let _ = writeln!(y, "    hash_key: {}", yaml_str(k));
        }
        if let Some(protocol) = p.protocol {
            let _ = writeln!(y, "    protocol: {protocol}");
        }
        if p.tls_unverified {
            y.push_str("    tls: {verify: false}\n");
        }
        let buffering: Vec<String> = [
            ("request", &p.buffer_request),
            ("response", &p.buffer_response),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
        if !buffering.is_empty() {
            let _ = writeln!(y, "    buffering: {{{}}}", buffering.join(", "));
        }
        y.push_str("    servers:\n");
        for (addr, weight, max_conns, backup) in &p.servers {
            let _ = write!(y, "      - addr: {}", yaml_str(addr));
            if let Some(w) = weight {
                let _ = write!(y, "\n        weight: {w}");
            }
            if let Some(m) = max_conns {
                let _ = write!(y, "\n        max_conns: {m}");
            }
            if *backup {
                y.push_str("\n        backup: true");
            }
            y.push('\n');
        }
        let timeouts: Vec<String> = [
            ("connect", &p.connect),
            ("read", &p.read),
            ("write", &p.write),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .filter(|(k, v)| !is_default(&format!("upstreams.*.timeouts.{k}"), v))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
        if !timeouts.is_empty() {
            let _ = writeln!(y, "    timeouts: {{{}}}", timeouts.join(", "));
        }
        let keepalive: Vec<String> = [
            ("idle", &p.keepalive_idle),
            ("timeout", &p.keepalive_timeout),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
        if !keepalive.is_empty() {
            let _ = writeln!(y, "    keepalive: {{{}}}", keepalive.join(", "));
        }
        let mut retry = Vec::new();
        if let Some(on) = &p.retry_on {
            retry.push(format!("on: [{}]", on.join(", ")));
        }
        if let Some(t) = &p.tries {
            retry.push(format!("tries: {t}"));
        }
        if let Some(t) = &p.retry_timeout {
            retry.push(format!("timeout: {t}"));
        }
        if !retry.is_empty() {
            let _ = writeln!(y, "    retry: {{{}}}", retry.join(", "));
        }
        let breaker: Vec<String> = [("failures", &p.failures), ("open_for", &p.open_for)]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
            .collect();
        if !breaker.is_empty() {
            let _ = writeln!(y, "    circuit_breaker: {{{}}}", breaker.join(", "));
        }
    }
    // Only needed with more than one pool or with policies; always written for clarity.
    // The first route of a host, path form, listener set and condition set wins (as the
    // loader would refuse a second that can never be taken).
    // A route after one without conditions on the same host, path and listeners could never
    // be taken either (nginx would use the first location too).
    let mut seen = std::collections::HashSet::new();
    let mut taken = std::collections::HashSet::new();
    let routes: Vec<&Route> = out
        .routes
        .iter()
        .filter(|r| {
            let mut listeners = r.listeners.clone();
            listeners.sort();
            let place = (
                r.host.clone(),
                r.loc.clone(),
                if serves_all(r) { vec![] } else { listeners },
            );
            if taken.contains(&place) {
                return false;
            }
            if r.conditions.is_empty() {
                taken.insert(place.clone());
            }
            seen.insert((place, r.conditions.clone()))
        })
        .collect();
    if !out.maps.is_empty() {
        y.push_str("maps:\n");
        for m in &out.maps {
            let _ = writeln!(y, "  # {}", m.origin);
            let _ = writeln!(y, "  {}:\n    from: {}", m.name, yaml_str(&m.from));
            if !m.values.is_empty() {
                y.push_str("    values:\n");
                for (k, v) in &m.values {
                    let _ = writeln!(y, "      {}: {}", yaml_str(k), yaml_str(v));
                }
            }
            if let Some(d) = &m.default {
                let _ = writeln!(y, "    default: {}", yaml_str(d));
            }
        }
    }
    if !routes.is_empty() {
        y.push_str("routes:\n");
    }
    for r in routes {
        if !r.origin.is_empty() {
            let _ = writeln!(y, "  # {}", r.origin);
        }
        match &r.loc {
            Loc::Prefix { path, stop_regex } => {
                let _ = write!(y, "  - path: {}", yaml_str(path));
                if *stop_regex {
                    y.push_str("\n    stop_regex: true");
                }
            }
            Loc::Exact(path) => {
                let _ = write!(y, "  - exact: {}", yaml_str(path));
            }
            Loc::Regex {
                re,
                case_insensitive,
            } => {
                let _ = write!(y, "  - regex: {}", yaml_str(re));
                if *case_insensitive {
                    y.push_str("\n    case_insensitive: true");
                }
            }
        }
        if let Some(h) = &r.host {
            let _ = write!(y, "\n    host: {}", yaml_str(h));
        }
        if !serves_all(r) {
            let names: Vec<String> = r.listeners.iter().map(|a| name_of(a)).collect();
            let _ = write!(y, "\n    listeners: [{}]", names.join(", "));
        }
        if !r.conditions.is_empty() {
            y.push_str("\n    match:");
            for c in &r.conditions {
                match c {
                    Cond::Methods(m) => {
                        let _ = write!(y, "\n      methods: [{}]", m.join(", "));
                    }
                    Cond::Header(n, t) => {
                        let _ = write!(y, "\n      headers: {{{}: {}}}", yaml_str(n), yaml_str(t));
                    }
                    Cond::Cookie(n, t) => {
                        let _ = write!(y, "\n      cookies: {{{}: {}}}", yaml_str(n), yaml_str(t));
                    }
                }
            }
        }
        if let Some(u) = &r.upstream {
            let _ = write!(y, "\n    upstream: {u}");
        }
        // An `if` inside a file location that answers itself serves no files.
        let serves_files = r.files.serve && r.redirect.is_none() && r.respond.is_none();
        if serves_files {
            super::files::render(&mut y, &r.files);
        }
        if r.internal {
            y.push_str("\n    internal: true");
        }
        // A route that only serves files forwards nothing.
        let forwards = r.upstream.is_some() || !serves_files;
        if let Some((to, status)) = &r.redirect {
            let _ = write!(
                y,
                "\n    redirect: {{to: {}, status: {status}}}",
                yaml_str(to)
            );
        } else if let Some((status, body)) = &r.respond {
            let _ = write!(y, "\n    respond: {{status: {status}");
            if let Some(b) = body {
                let _ = write!(y, ", body: {}", yaml_str(b));
            }
            y.push('}');
        }
        if r.redirect.is_none() && r.respond.is_none() && forwards {
            if r.strip_prefix {
                y.push_str("\n    strip_prefix: true");
            }
            if let Some((from, to)) = &r.rewrite {
                let _ = write!(
                    y,
                    "\n    rewrite: {{from: {}, to: {}}}",
                    yaml_str(from),
                    yaml_str(to)
                );
            }
            if !r.request_set.is_empty() {
                y.push_str("\n    request_headers:\n      set:");
                for (k, v) in &r.request_set {
                    let _ = write!(y, "\n        {}: {}", yaml_str(k), yaml_str(v));
                }
            }
            if let Some(m) = &r.max_body {
                let _ = write!(y, "\n    max_body_bytes: {}", yaml_str(m));
            }
        }
        if r.compress && r.redirect.is_none() && r.respond.is_none() {
            y.push_str("\n    compress: true");
        }
        if !r.response_set.is_empty() || !r.response_remove.is_empty() {
            y.push_str("\n    response_headers:");
            if !r.response_set.is_empty() {
                y.push_str("\n      set:");
                for (k, v) in &r.response_set {
                    let _ = write!(y, "\n        {}: {}", yaml_str(k), yaml_str(v));
                }
            }
            if !r.response_remove.is_empty() {
                let list: Vec<String> = r.response_remove.iter().map(|s| yaml_str(s)).collect();
                let _ = write!(y, "\n      remove: [{}]", list.join(", "));
            }
        }
        if !r.error_pages.is_empty() {
            y.push_str("\n    error_pages:");
            for (codes, file) in &r.error_pages {
                let _ = write!(y, "\n      {}: {}", yaml_str(codes), yaml_str(file));
            }
        }
        if r.intercept_errors && r.redirect.is_none() && r.respond.is_none() && r.upstream.is_some()
        {
            y.push_str("\n    intercept_errors: true");
        }
        if !r.allow.is_empty() {
            let list: Vec<String> = r.allow.iter().map(|s| yaml_str(s)).collect();
            let _ = write!(y, "\n    allow: [{}]", list.join(", "));
        }
        if !r.deny.is_empty() {
            let list: Vec<String> = r.deny.iter().map(|s| yaml_str(s)).collect();
            let _ = write!(y, "\n    deny: [{}]", list.join(", "));
        }
        if let Some((n, per, burst)) = r.rate {
            let _ = write!(
                y,
                "\n    rate_limit: {{requests: {n}, per: {per}, burst: {burst}}}"
            );
        }
        y.push('\n');
    }
    y
}

/// A listener's name in the output: `port-80`, or its whole address when another listener
/// has the same port (`addr-10-0-0-5-80`).
fn listener_name(addr: &str, all: &[(String, Listener)]) -> String {
    let port = addr.rsplit(':').next().unwrap_or(addr);
    let shared = all
        .iter()
        .filter(|(a, _)| a.rsplit(':').next() == Some(port))
        .count()
        > 1;
    if shared {
        let flat: String = addr
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("addr-{}", flat.trim_matches('-'))
    } else {
        format!("port-{port}")
    }
}
