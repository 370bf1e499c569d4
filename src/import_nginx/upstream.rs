//! `upstream` blocks as pools, and `map` blocks (whose values may name pools).

use super::*;

/// `map $from $name { default D; KEY VALUE; ~REGEX VALUE; }` as a switchyard map.
pub(super) fn map(out: &mut Out, d: &Directive) {
    let (Some(from), Some(name)) = (d.args.first(), d.args.get(1)) else {
        out.skip(d, "`map` needs a source and a variable");
        return;
    };
    let Some(name) = name.strip_prefix('$').filter(|n| !n.is_empty()) else {
        out.skip(d, "the map's variable must start with `$`");
        return;
    };
    if let Err(why) = out.template(from, false, 0) {
        out.skip(d, format!("its source is not translated: {why}"));
        return;
    }
    let mut m = ImportMap {
        origin: format!("map {from} ${name} ({})", d.at()),
        name: name.to_string(),
        from: from.clone(),
        values: Vec::new(),
        default: None,
    };
    for e in d.block.iter().flatten() {
        let value = e.args.first().cloned().unwrap_or_default();
        match (e.name.as_str(), e.args.len()) {
            ("default", 1) => m.default = Some(value),
            ("hostnames", 0) => out.skip(
                e,
                "`hostnames` maps are not translated: keys are compared exactly",
            ),
            ("volatile", 0) => out.note(
                e,
                "switchyard computes a map's value each time it is used",
                false,
            ),
            ("include", _) => missing_include(out, e),
            (_, 1) if value.contains('$') => {
                out.skip(e, "a map value with variables is not translated")
            }
            (key, 1) => {
                if let Some(re) = key.strip_prefix('~') {
                    let re = re.strip_prefix('*').unwrap_or(re);
                    if let Err(why) = crate::config::validate::check_regex(re) {
                        out.skip(e, format!("its regex does not translate ({why})"));
                        continue;
                    }
                }
                m.values.push((key.to_string(), value));
            }
            _ => out.skip(e, "a map entry is a key and a value"),
        }
    }
    out.maps.push(m);
}

/// A valid pool name for an nginx upstream name: what is not a letter, digit, `_` or `-`
/// becomes `-`.
pub(super) fn pool_name(nginx: &str) -> String {
    let n: String = nginx
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if n.is_empty() { "upstream".into() } else { n }
}

pub(super) fn upstream(out: &mut Out, d: &Directive) {
    let Some(nginx_name) = d.args.first().cloned() else {
        out.skip(d, "an upstream without a name");
        return;
    };
    let name = pool_name(&nginx_name);
    out.pool(&name).origin = format!("upstream {nginx_name} ({})", d.at());
    if name != nginx_name {
        out.pool(&name).nginx_name = Some(nginx_name.clone());
        out.note(
            d,
            format!("the pool is named `{name}` (pool names are letters, digits, _ and -)"),
            false,
        );
    }
    for s in d.block.iter().flatten() {
        let a0 = s.args.first().cloned().unwrap_or_default();
        match s.name.as_str() {
            "server" => {
                let (mut weight, mut max_conns, mut backup, mut down) = (None, None, false, false);
                for a in s.args.iter().skip(1) {
                    if let Some(w) = a.strip_prefix("weight=") {
                        weight = Some(w.to_string());
                    } else if let Some(m) = a.strip_prefix("max_conns=") {
                        max_conns = Some(m.to_string());
                    } else if let Some(f) = a.strip_prefix("max_fails=") {
                        if f == "0" {
                            out.note(
                                s,
                                "max_fails=0 (no failure accounting): switchyard's breaker keeps its default `failures`",
                                false,
                            );
                        } else {
                            out.pool(&name).failures = Some(f.to_string());
                        }
                    } else if let Some(t) = a.strip_prefix("fail_timeout=") {
                        match crate::config::units::parse_duration(&duration(t)) {
                            Ok(d) if !d.is_zero() => out.pool(&name).open_for = Some(duration(t)),
                            Ok(_) => out.note(
                                s,
                                "fail_timeout=0: switchyard's breaker keeps its default `open_for`",
                                false,
                            ),
                            Err(e) => out.skip(s, format!("fail_timeout={t}: {e}")),
                        }
                    } else if a == "backup" {
                        backup = true;
                    } else if a == "down" {
                        down = true;
                    } else {
                        out.skip(s, format!("`{a}` is not translated"));
                    }
                }
                if down {
                    out.note(s, "a `down` server is left out", false);
                    continue;
                }
                if a0.is_empty() {
                    out.skip(s, "`server` needs an address");
                    continue;
                }
                if let Some(Err(why)) = crate::config::Endpoint::parse_unix(&a0) {
                    out.skip(s, why);
                    continue;
                }
                let addr = if a0.contains(':') {
                    a0.clone()
                } else {
                    format!("{a0}:80")
                };
                out.pool(&name)
                    .servers
                    .push((addr, weight, max_conns, backup));
            }
            "least_conn" => out.pool(&name).balance = Some("least_conn".into()),
            "random" => out.pool(&name).balance = Some("random".into()),
            "ip_hash" => {
                let p = out.pool(&name);
                p.balance = Some("hash".into());
                p.hash_key = Some("client_ip".into());
            }
            "hash" => {
                let key = match a0.as_str() {
                    "$remote_addr" | "$binary_remote_addr" => Some("client_ip".to_string()),
                    "$uri" | "$request_uri" => Some("path".to_string()),
                    k => k
                        .strip_prefix("$http_")
                        .map(|h| format!("header:{}", h.replace('_', "-")))
                        .or_else(|| k.strip_prefix("$cookie_").map(|c| format!("cookie:{c}"))),
                };
                match key {
                    Some(k) => {
                        if s.args.get(1).map(String::as_str) != Some("consistent") {
                            out.note(s, "switchyard's hash is always consistent (ketama)", false);
                        }
                        let p = out.pool(&name);
                        p.balance = Some("hash".into());
                        p.hash_key = Some(k);
                    }
                    None => out.skip(s, format!("hash key `{a0}` is not translated")),
                }
            }
            "keepalive" => out.pool(&name).keepalive_idle = Some(a0),
            "keepalive_timeout" => match bad_value(s) {
                Some(why) => out.skip(s, why),
                None => out.pool(&name).keepalive_timeout = Some(duration(&a0)),
            },
            "keepalive_requests" | "keepalive_time" => {
                out.note(s, "not needed by switchyard", false)
            }
            _ => out.skip(s, "no switchyard equivalent"),
        }
    }
    let p = out.pool(&name);
    if p.balance.is_none() {
        // nginx's default is weighted round robin.
        p.balance = Some("round_robin".into());
    }
}
