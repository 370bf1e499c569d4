//! What a `location` block (or a `server` applying to its locations) carries: targets, headers, access lists, rate limits, rewrites, returns and per-pool proxy settings.

use super::*;

/// A location's path form, or why it is not translated.
pub(super) fn location_path(loc: &Directive) -> Result<Loc, String> {
    let args: Vec<&str> = loc.args.iter().map(String::as_str).collect();
    // nginx also takes the modifier glued to the path: `location =/x`, `location ~*\.png$`.
    let (modifier, rest) = match args.as_slice() {
        [m, p] => (*m, *p),
        [one] => ["^~", "~*", "=", "~", "@"]
            .iter()
            .find_map(|m| one.strip_prefix(m).map(|p| (*m, p)))
            .unwrap_or(("", one)),
        _ => return Err("a location with more than a modifier and a path".into()),
    };
    let regex = |re: &str, ci: bool| {
        crate::config::validate::check_regex(re)
            .map(|()| Loc::Regex {
                re: re.to_string(),
                case_insensitive: ci,
            })
            .map_err(|e| format!("its regex does not translate ({e}; the regex crate has no lookaround or backreferences)"))
    };
    match modifier {
        "" if rest.starts_with('/') => Ok(Loc::Prefix {
            path: rest.to_string(),
            stop_regex: false,
        }),
        "^~" if rest.starts_with('/') => Ok(Loc::Prefix {
            path: rest.to_string(),
            stop_regex: true,
        }),
        "=" if rest.starts_with('/') => Ok(Loc::Exact(rest.to_string())),
        "~" => regex(rest, false),
        "~*" => regex(rest, true),
        "@" => Err(
            "a named location (the target of `try_files` or `error_page`) is not translated".into(),
        ),
        _ => Err(format!(
            "`location {}` is not a path nginx matches",
            loc.args.join(" ")
        )),
    }
}

/// `return CODE [TEXT]` that is not a redirect: a route's `respond` (444 closes).
fn return_answer(d: &Directive) -> Option<(u16, Option<String>)> {
    let code: u16 = d.args.first()?.parse().ok()?;
    if [301, 302, 303, 307, 308].contains(&code) || !(200..=599).contains(&code) {
        return None;
    }
    match d.args.get(1) {
        None => Some((code, None)),
        Some(_) if code == 444 => None,
        Some(text) => Some((code, Some(text.clone()))),
    }
}

fn return_redirect(d: &Directive) -> Option<(String, u16)> {
    match d.args.as_slice() {
        [code, url] => {
            let code: u16 = code.parse().ok()?;
            [301, 302, 307, 308]
                .contains(&code)
                .then(|| (url.clone(), code))
        }
        [url] if url.starts_with("http") => Some((url.clone(), 302)),
        _ => None,
    }
}

/// `error_page CODE… URI`: the file nginx would serve for URI — the `root` of the server's
/// location that takes URI (or the server's `root`) joined with URI. `None` (reported) for
/// `=CODE` answers, named locations and pages that come from an upstream.
fn error_page(out: &mut Out, s: &Directive) -> Option<(String, String)> {
    let (uri, codes) = s.args.split_last()?;
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    if codes.is_empty() || codes.iter().any(|c| c.starts_with('=')) {
        out.skip(
            s,
            "`error_page … =CODE` (a changed status) is not translated",
        );
        return None;
    }
    if codes
        .iter()
        .any(|c| c.parse::<u16>().map_or(true, |c| !(400..=599).contains(&c)))
    {
        out.skip(s, "only error statuses 400 to 599 are translated");
        return None;
    }
    if !uri.starts_with('/') {
        out.skip(
            s,
            "an error page that is a named location or a URL is not translated (only a file's path)",
        );
        return None;
    }
    // The location nginx would serve URI from: an exact one, else the longest prefix.
    let block = &out.server_block;
    let root_of = |b: &[Directive]| {
        b.iter()
            .find(|d| d.name == "root" || d.name == "alias")
            .map(|d| (d.name.clone(), d.args.first().cloned().unwrap_or_default()))
    };
    let mut best: Option<(usize, &Directive)> = None;
    for loc in block.iter().filter(|d| d.name == "location") {
        match location_path(loc) {
            Ok(Loc::Exact(p)) if p == *uri => {
                best = Some((usize::MAX, loc));
                break;
            }
            Ok(Loc::Prefix { path, .. })
                if uri.starts_with(&path) && best.is_none_or(|(n, _)| path.len() > n) =>
            {
                best = Some((path.len(), loc));
            }
            _ => {}
        }
    }
    let inner: &[Directive] = best.and_then(|(_, l)| l.block.as_deref()).unwrap_or(&[]);
    if inner.iter().any(|d| d.name == "proxy_pass") {
        out.skip(s, "an error page answered by an upstream is not translated");
        return None;
    }
    let file = match root_of(inner).or_else(|| root_of(block)) {
        Some((kind, dir)) if kind == "alias" => dir,
        Some((_, dir)) => format!("{}{uri}", dir.trim_end_matches('/')),
        None => {
            out.skip(
                s,
                "no `root` serves this page (nginx would use its html/ directory)",
            );
            return None;
        }
    };
    let file = if file.starts_with('/') {
        file
    } else {
        // nginx's prefix on Debian.
        format!("/usr/share/nginx/{file}")
    };
    out.note(s, format!("the page is read from {file}"), false);
    Some((codes.join(" "), file))
}

/// An address or a CIDR block, as `allow`/`deny` take.
fn is_cidr(text: &str) -> bool {
    text.parse::<ipnet::IpNet>().is_ok() || text.parse::<std::net::IpAddr>().is_ok()
}

/// What a `return` translates to.
pub(super) enum Return {
    Redirect((String, u16)),
    Answer((u16, Option<String>)),
}

/// A `return` directive, or `None` (reported) when its form or a variable does not translate.
pub(super) fn translate_return(out: &mut Out, s: &Directive) -> Option<Return> {
    let ret = match (return_redirect(s), return_answer(s)) {
        (Some(r), _) => Return::Redirect(r),
        (None, Some(a)) => Return::Answer(a),
        (None, None) => {
            out.skip(s, RETURN_FORMS);
            return None;
        }
    };
    let text = match &ret {
        Return::Redirect((to, _)) => Some(to),
        Return::Answer((_, body)) => body.as_ref(),
    };
    if let Some(Err(why)) = text.map(|t| out.template(t, false, 0)) {
        out.skip(s, why);
        return None;
    }
    Some(ret)
}

/// What `return` forms are translated.
pub(super) const RETURN_FORMS: &str =
    "only `return 301|302|307|308 URL` and `return CODE [TEXT]` are translated";

/// Directives of a `location` (or a `server` applying to its locations).
pub(super) fn location_directive(out: &mut Out, s: &Directive, r: &mut Route) {
    let a0 = s.args.first().cloned().unwrap_or_default();
    if a0.is_empty() && !matches!(s.name.as_str(), "internal" | "include") {
        // nginx itself refuses these; nothing can be translated from them.
        out.skip(s, "an argument is missing");
        return;
    }
    if settled_value(out, s) {
        return;
    }
    if s.name == "grpc_pass" {
        transport::grpc_pass(out, s, r);
        return;
    }
    if transport::transport_directive(out, s, Some(r)) {
        return;
    }
    match s.name.as_str() {
        "proxy_pass" => {
            let rest = a0
                .strip_prefix("http://")
                .or_else(|| a0.strip_prefix("https://"));
            let Some(rest) = rest else {
                out.skip(s, "only http:// and https:// targets are translated");
                return;
            };
            if a0.starts_with("https://") {
                out.note(s, "add `tls:` to the upstream for HTTPS to it", true);
            }
            let (host, uri) = match rest.strip_prefix("unix:") {
                // `http://unix:/run/app.sock:/uri`: the socket's path ends at a colon.
                Some(path) => match path.find(':') {
                    Some(i) => (
                        &rest[..5 + i],
                        Some(&path[i + 1..]).filter(|u| !u.is_empty()),
                    ),
                    None => (rest, None),
                },
                None => match rest.find('/') {
                    Some(i) => (&rest[..i], Some(&rest[i..])),
                    None => (rest, None),
                },
            };
            if host.is_empty() {
                out.skip(s, "the target has no host");
                return;
            }
            if let Some(Err(why)) = crate::config::Endpoint::parse_unix(host) {
                out.skip(s, why);
                return;
            }
            if uri.is_some() && matches!(r.loc, Loc::Regex { .. }) {
                out.skip(
                    s,
                    "a target with a URI part in a regex location (nginx refuses it too)",
                );
                return;
            }
            if let Some(var) = host.strip_prefix('$') {
                // `proxy_pass http://$backend;` with `map … $backend`: the pool the map names.
                let var = var.trim_matches(['{', '}']);
                let upstreams: Vec<String> = out.pools.iter().map(|(n, _)| n.clone()).collect();
                let Some(m) = out.maps.iter_mut().find(|m| m.name == var) else {
                    out.skip(
                        s,
                        "a target with variables other than a `map` is not translated",
                    );
                    return;
                };
                // Its values name upstreams; a renamed upstream is named as switchyard calls it.
                let mut all_pools = true;
                for v in m
                    .values
                    .iter_mut()
                    .map(|(_, v)| v)
                    .chain(m.default.as_mut())
                {
                    match upstreams.iter().find(|n| *n == v || pool_name(v) == **n) {
                        Some(n) => v.clone_from(n),
                        None => all_pools = false,
                    }
                }
                if !all_pools || m.default.is_none() || uri.is_some() {
                    out.skip(
                        s,
                        "a map target is translated when every value of the map (and a `default`) names an `upstream`, and it has no URI part",
                    );
                    return;
                }
                r.upstream = Some(format!("${var}"));
                r.proxy_host = Some(format!("${var}"));
                return;
            }
            let known = out
                .pools
                .iter()
                .find(|(n, p)| n == host || p.nginx_name.as_deref() == Some(host))
                .map(|(n, _)| n.clone());
            let name = if let Some(known) = known {
                known
            } else {
                // A literal host:port: a pool of one server.
                let pool: String = host
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                let addr = if host.contains(':') {
                    // `host:port`, or `unix:/path` as switchyard writes it.
                    host.to_string()
                } else {
                    format!("{host}:80")
                };
                let origin = format!("proxy_pass {a0} ({})", s.at());
                let p = out.pool(&pool);
                if p.servers.is_empty() {
                    p.origin = origin;
                    p.servers.push((addr, None, None, false));
                    p.balance = Some("round_robin".into());
                }
                pool
            };
            r.upstream = Some(name);
            // nginx's `$proxy_host`: the target as written, without the scheme's default port.
            let default_port = if a0.starts_with("https://") {
                ":443"
            } else {
                ":80"
            };
            r.proxy_host = Some(if host.starts_with("unix:") {
                // nginx's `$proxy_host` for a Unix socket.
                "localhost".to_string()
            } else {
                host.strip_suffix(default_port).unwrap_or(host).to_string()
            });
            match uri {
                None => {}
                Some("/") => r.strip_prefix = true,
                Some(u) => {
                    r.strip_prefix = true;
                    r.rewrite = Some(("^/(.*)$".into(), format!("{}/$1", u.trim_end_matches('/'))));
                }
            }
        }
        "proxy_set_header" => {
            let (Some(name), Some(value)) = (s.args.first(), s.args.get(1)) else {
                out.skip(s, "needs a name and a value");
                return;
            };
            if name.eq_ignore_ascii_case("host") {
                match out.template(value, false, 0) {
                    Ok(()) => r.host_header = Some(value.clone()),
                    Err(why) => out.skip(s, why),
                }
            } else if MANAGED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                out.note(s, "switchyard sets this header itself", false);
            } else if value.is_empty() {
                r.request_set.retain(|(n, _)| n != name);
                out.note(s, "an empty value removes the field: not forwarded", false);
            } else if let Err(why) = out.template(value, false, 0) {
                out.skip(s, why);
            } else {
                r.request_set.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                r.request_set.push((name.clone(), value.clone()));
            }
        }
        "add_header" => match (s.args.first(), s.args.get(1)) {
            (Some(n), Some(v)) => match out.template(v, true, 0) {
                Ok(()) => {
                    r.response_set.retain(|(k, _)| !k.eq_ignore_ascii_case(n));
                    r.response_set.push((n.clone(), v.clone()));
                }
                Err(why) => out.skip(s, why),
            },
            _ => out.skip(s, "`add_header NAME VALUE [always]` is translated"),
        },
        "proxy_hide_header" | "more_clear_headers" => {
            r.response_remove.extend(s.args.iter().cloned())
        }
        "allow" | "deny" if a0 != "all" && !is_cidr(&a0) => {
            out.skip(s, "only addresses, CIDR blocks and `all` are translated")
        }
        "allow" => {
            if a0 != "all" {
                r.allow.push(a0);
            }
        }
        "deny" => {
            if a0 == "all" {
                if r.allow.is_empty() {
                    r.allow.push("0.0.0.0/32".into());
                    out.note(s, "`deny all` without `allow`: nothing is allowed", false);
                }
            } else {
                r.deny.push(a0);
            }
        }
        "limit_req" => {
            let zone = s.args.iter().find_map(|a| a.strip_prefix("zone="));
            let burst: u32 = s
                .args
                .iter()
                .find_map(|a| a.strip_prefix("burst="))
                .and_then(|b| b.parse().ok())
                .unwrap_or(0);
            match zone.and_then(|z| out.zones.get(z).copied()) {
                Some((n, per)) => {
                    r.rate = Some((n, per, burst));
                    if !s.args.iter().any(|a| a == "nodelay") {
                        out.note(s, "excess requests get 429 at once (nginx would delay them within `burst`)", false);
                    }
                }
                None => out.skip(s, "its `limit_req_zone` was not translated"),
            }
        }
        "rewrite" => match s.args.as_slice() {
            [from, to] | [from, to, _]
                if s.args.get(2).is_none_or(|f| f == "break" || f == "last") =>
            {
                let groups = regex::Regex::new(from).map_or(0, |re| re.captures_len());
                match out.template(to, false, groups) {
                    Ok(()) => r.rewrite = Some((from.clone(), to.clone())),
                    Err(why) => out.skip(s, why),
                }
            }
            _ => out.skip(
                s,
                "only `rewrite REGEX REPLACEMENT [break|last]` is translated",
            ),
        },
        "proxy_connect_timeout"
        | "proxy_read_timeout"
        | "proxy_send_timeout"
        | "proxy_next_upstream"
        | "proxy_next_upstream_tries"
        | "proxy_next_upstream_timeout" => {
            let Some(pool) = r.upstream.clone() else {
                out.skip(
                    s,
                    "put it in a location with `proxy_pass` (it is per pool in switchyard)",
                );
                return;
            };
            let p = out.pool(&pool);
            match s.name.as_str() {
                "proxy_connect_timeout" => p.connect = Some(duration(&a0)),
                "proxy_read_timeout" => p.read = Some(duration(&a0)),
                "proxy_send_timeout" => p.write = Some(duration(&a0)),
                "proxy_next_upstream_tries" => p.tries = Some(a0),
                "proxy_next_upstream_timeout" => p.retry_timeout = Some(duration(&a0)),
                _ => {
                    let mut on = Vec::new();
                    let mut dropped = Vec::new();
                    for a in &s.args {
                        match a.as_str() {
                            "error" | "timeout" | "invalid_header" | "http_500" | "http_502"
                            | "http_503" | "http_504" | "http_429" | "non_idempotent" => {
                                on.push(a.clone())
                            }
                            "off" => {}
                            other => dropped.push(other.to_string()),
                        }
                    }
                    p.retry_on = Some(on);
                    if !dropped.is_empty() {
                        out.skip(s, format!("{} not translated", dropped.join(", ")));
                    }
                }
            }
        }
        "proxy_http_version" => out.note(s, "switchyard speaks HTTP/1.1 to upstreams", false),
        "error_page" => {
            if let Some(page) = error_page(out, s) {
                r.error_pages.retain(|(codes, _)| *codes != page.0);
                r.error_pages.push(page);
            }
        }
        "proxy_intercept_errors" => r.intercept_errors = a0 == "on",
        "client_max_body_size" => r.max_body = Some(a0),
        "include" => missing_include(out, s),
        n if NOT_NEEDED.contains(&n) => out.note(s, "not needed by switchyard", false),
        _ => out.skip(s, "no switchyard equivalent"),
    }
}
