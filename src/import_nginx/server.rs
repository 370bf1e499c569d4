//! A `server` block: its listeners, names, TLS settings, server-wide redirect, and its
//! prefix locations as routes.

use super::*;

pub(super) fn server(out: &mut Out, d: &Directive, http_compress: bool) {
    let block = d.block.as_deref().unwrap_or(&[]);
    out.server_block = block.to_vec();
    let mut listens: Vec<(String, bool, bool, bool)> = Vec::new();
    let mut defaults: Vec<String> = Vec::new();
    let mut hosts: Vec<String> = Vec::new();
    let (mut cert, mut key, mut min_version) = (None, None, None);
    let mut compress = http_compress;
    let mut server_route = Route::default();
    let mut redirect_all = None;
    let mut answer_all = None;
    let mut server_try_files: Option<Directive> = None;
    for s in block {
        let a0 = s.args.first().cloned().unwrap_or_default();
        match s.name.as_str() {
            "listen" if a0.is_empty() => out.skip(s, "`listen` needs an address or a port"),
            "listen" => {
                let addr = if a0.bytes().all(|b| b.is_ascii_digit()) {
                    format!("0.0.0.0:{a0}")
                } else if (a0.starts_with('[') && !a0.contains("]:")) || !a0.contains(':') {
                    // `[::]` or a bare address: nginx's default port.
                    format!("{a0}:80")
                } else {
                    a0.clone()
                };
                let ssl = s.args.iter().any(|a| a == "ssl");
                let h2 = s.args.iter().any(|a| a == "http2");
                if s.args
                    .iter()
                    .any(|a| a == "default_server" || a == "default")
                {
                    defaults.push(addr.clone());
                }
                let proxy_protocol = s.args.iter().any(|a| a == "proxy_protocol");
                listens.push((addr, ssl, h2, proxy_protocol));
            }
            "server_name" => hosts.extend(
                s.args
                    .iter()
                    .filter(|h| *h != "_" && !h.is_empty())
                    .cloned(),
            ),
            "ssl_certificate" => cert = Some(a0),
            "ssl_certificate_key" => key = Some(a0),
            "ssl_protocols" => {
                min_version = Some(
                    if s.args.iter().any(|p| p == "TLSv1.2") {
                        "1.2"
                    } else {
                        "1.3"
                    }
                    .to_string(),
                );
                if s.args.iter().any(|p| p == "TLSv1" || p == "TLSv1.1") {
                    out.note(s, "TLS 1.0 and 1.1 are never offered", false);
                }
            }
            "http2" => {
                if a0 == "on" {
                    for l in &mut listens {
                        l.2 = true;
                    }
                }
            }
            "gzip" => compress = a0 == "on",
            "return" => match translate_return(out, s) {
                Some(Return::Redirect(r)) => redirect_all = Some((s.clone(), r)),
                Some(Return::Answer(a)) => answer_all = Some((s.clone(), a)),
                None => {}
            },
            "location" => {}
            "add_header"
            | "proxy_hide_header"
            | "allow"
            | "deny"
            | "proxy_set_header"
            | "limit_req"
            | "rewrite"
            | "error_page"
            | "proxy_intercept_errors" => location_directive(out, s, &mut server_route),
            "root" | "index" | "expires" | "gzip_static" | "autoindex" => {
                files::file_directive(out, s, &mut server_route);
            }
            // Not inherited: nginx applies it to requests no location takes.
            "try_files" => {
                server_try_files = Some(s.clone());
                files::file_directive(out, s, &mut server_route);
            }
            "proxy_pass" => out.skip(
                s,
                "`proxy_pass` belongs in a `location` (nginx refuses it at server level)",
            ),
            "proxy_connect_timeout"
            | "proxy_read_timeout"
            | "proxy_send_timeout"
            | "proxy_next_upstream"
            | "proxy_next_upstream_tries"
            | "proxy_next_upstream_timeout"
            | "proxy_http_version"
            | "proxy_buffering"
            | "proxy_request_buffering"
            | "proxy_buffers"
            | "proxy_buffer_size" => location_directive(out, s, &mut server_route),
            _ => common(out, s, None),
        }
    }
    if listens.is_empty() {
        listens.push(("0.0.0.0:80".into(), false, false, false));
    }
    for (addr, ssl, h2, proxy_protocol) in &listens {
        let i = match out.listeners.iter().position(|(a, _)| a == addr) {
            Some(i) => i,
            None => {
                out.listeners.push((addr.clone(), Listener::default()));
                out.listeners.len() - 1
            }
        };
        let l = &mut out.listeners[i].1;
        l.ssl |= *ssl;
        l.http2 |= *h2;
        l.proxy_protocol |= *proxy_protocol;
        if *ssl {
            if let (Some(c), Some(k)) = (&cert, &key)
                && !l.certs.contains(&(c.clone(), k.clone()))
            {
                l.certs.push((c.clone(), k.clone()));
            }
            if min_version.is_some() {
                l.min_version.clone_from(&min_version);
            }
        }
    }
    let locations: Vec<&Directive> = block.iter().filter(|s| s.name == "location").collect();
    let host_list: Vec<Option<String>> = if hosts.is_empty() {
        vec![None]
    } else {
        hosts
            .iter()
            .map(|h| Some(h.trim_start_matches('.').to_string()))
            .collect()
    };
    let addrs: Vec<String> = listens.iter().map(|(a, ..)| a.clone()).collect();
    let first_route = out.routes.len();
    let server_files = server_route.files.clone();
    server_route.files.try_files = None;
    let base = Route {
        listeners: addrs.clone(),
        compress,
        ..server_route
    };
    if let Some((rd, (to, status))) = &redirect_all {
        for h in &host_list {
            out.routes.push(Route {
                origin: format!("return {status} {to} ({})", rd.at()),
                host: h.clone(),
                redirect: Some((to.clone(), *status)),
                // nginx's `return` answers before any `proxy_pass` would.
                upstream: None,
                ..base.clone()
            });
        }
    } else if let Some((rd, answer)) = &answer_all {
        for h in &host_list {
            out.routes.push(Route {
                origin: format!("return {} ({})", rd.args.join(" "), rd.at()),
                host: h.clone(),
                respond: Some(answer.clone()),
                upstream: None,
                ..base.clone()
            });
        }
    } else {
        let catch_all = !locations
            .iter()
            .any(|l| matches!(location_path(l), Ok(Loc::Prefix { ref path, .. }) if path == "/"));
        for loc in locations {
            location(out, loc, &base, &host_list);
        }
        files::server_catch_all(
            out,
            block,
            catch_all,
            server_try_files.as_ref(),
            server_files,
            &base,
            &host_list,
        );
    }
    out.servers.push(ServerInfo {
        addrs,
        defaults,
        named: !hosts.is_empty(),
        routes: first_route..out.routes.len(),
    });
}

/// One `location` block: its routes, one per host of the server (conditions from `if` first).
fn location(out: &mut Out, loc: &Directive, base: &Route, host_list: &[Option<String>]) {
    let path = match location_path(loc) {
        Ok(p) => p,
        Err(why) => {
            let named = match loc.args.as_slice() {
                [m, n] if m == "@" => Some(n.as_str()),
                [n] => n.strip_prefix('@'),
                _ => None,
            };
            if named.is_some_and(|n| files::named_is_used(out, n)) {
                out.note(
                    loc,
                    "carried by the `try_files` that falls back to it (its route's upstream)",
                    false,
                );
            } else {
                out.skip(loc, why);
            }
            return;
        }
    };
    if let Loc::Exact(uri) = &path
        && serves_an_error_page(out, uri, loc)
    {
        return;
    }
    let mut r = Route {
        origin: format!("location {} ({})", loc.args.join(" "), loc.at()),
        loc: path,
        ..base.clone()
    };
    // nginx inherits `proxy_set_header` and `add_header` from the server only into locations
    // that have none of their own.
    let own = |name: &str| loc.block.iter().flatten().any(|d| d.name == name);
    if own("proxy_set_header") {
        r.request_set.clear();
        r.host_header = None;
    }
    if own("add_header") {
        r.response_set.clear();
    }
    // `proxy_pass` first: the per-pool directives of the location need its pool.
    let mut inner: Vec<&Directive> = loc.block.iter().flatten().collect();
    inner.sort_by_key(|s| !matches!(s.name.as_str(), "proxy_pass" | "grpc_pass"));
    let mut ifs = Vec::new();
    for s in inner {
        match s.name.as_str() {
            "gzip" => r.compress = s.args.first().is_some_and(|a| a == "on"),
            "return" => match translate_return(out, s) {
                Some(Return::Redirect(rd)) => r.redirect = Some(rd),
                Some(Return::Answer(a)) => r.respond = Some(a),
                None => {}
            },
            "if" => ifs.push(s),
            "client_max_body_size" => common(out, s, Some(&mut r)),
            _ if files::file_directive(out, s, &mut r) => {}
            _ => location_directive(out, s, &mut r),
        }
    }
    if r.redirect.is_some() || r.respond.is_some() {
        // nginx's `return` answers in the rewrite phase, before `proxy_pass` would.
        r.upstream = None;
    }
    files::finish(out, loc, &mut r);
    // Each `if` becomes a route on the same path, before the location's own, taken when its
    // condition holds: what the `if` block does on top of what the location does.
    let mut routes: Vec<Route> = if r.files.serve {
        Vec::new()
    } else {
        auto_redirect(out, &r).into_iter().collect()
    };
    for s in ifs {
        if let Some(mut cond) = if_route(out, s, &r) {
            // An `if` with its own `proxy_pass` proxies instead of serving files.
            if cond.upstream != r.upstream {
                cond.files.serve = false;
            }
            routes.push(cond);
        }
    }
    if r.upstream.is_none() && r.redirect.is_none() && r.respond.is_none() && !r.files.serve {
        if routes.is_empty() {
            out.skip(loc, "a location without `proxy_pass`, `return` or files");
        }
    } else {
        routes.push(r);
    }
    for mut route in routes {
        forwarded_host(&mut route);
        for h in host_list {
            let mut route = route.clone();
            if route.host.is_none() {
                route.host = h.clone();
            }
            out.routes.push(route);
        }
    }
}

/// nginx sends `Host: $proxy_host` (the `proxy_pass` target as written) unless
/// `proxy_set_header Host` says otherwise; switchyard forwards the client's `Host`, which is
/// what `$host` and `$http_host` give.
pub(super) fn forwarded_host(r: &mut Route) {
    if r.upstream.is_none() {
        return;
    }
    let value = match r.host_header.as_deref() {
        Some("$host" | "$http_host") => return,
        Some(v) => v.to_string(),
        None => match &r.proxy_host {
            Some(h) => h.clone(),
            None => return,
        },
    };
    r.request_set
        .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
    r.request_set.push(("Host".into(), value));
}

/// nginx answers a request for `/p` with `301` to `/p/` when `location /p/` proxies and no
/// location is for `/p` itself: an `exact` route that redirects as nginx does (to the server's
/// first port, unless it is the scheme's default).
fn auto_redirect(out: &Out, r: &Route) -> Option<Route> {
    let Loc::Prefix { path, .. } = &r.loc else {
        return None;
    };
    let bare = path.strip_suffix('/').filter(|b| !b.is_empty())?;
    r.upstream.as_ref()?;
    let taken = out
        .server_block
        .iter()
        .filter(|d| d.name == "location")
        .any(|d| match location_path(d) {
            Ok(Loc::Exact(p)) | Ok(Loc::Prefix { path: p, .. }) => p == bare,
            _ => false,
        });
    if taken {
        return None;
    }
    let first = r.listeners.first();
    let port = first.and_then(|a| a.rsplit(':').next()).unwrap_or("80");
    let ssl = out.listeners.iter().any(|(a, l)| l.ssl && first == Some(a));
    let port = if (port == "80" && !ssl) || (port == "443" && ssl) {
        String::new()
    } else {
        format!(":{port}")
    };
    Some(Route {
        origin: format!("{}, nginx's redirect of {bare} to {path}", r.origin),
        loc: Loc::Exact(bare.to_string()),
        upstream: None,
        redirect: Some((format!("$scheme://$host{port}{path}$is_args$args"), 301)),
        conditions: Vec::new(),
        ..r.clone()
    })
}

/// A `location = URI { root …; internal; }` that only serves an `error_page` of its server:
/// carried by `error_pages` (the file is read at load). Without `internal` nginx also serves
/// the file to a request for URI, which is not carried (static files).
fn serves_an_error_page(out: &mut Out, uri: &str, loc: &Directive) -> bool {
    let target = out
        .server_block
        .iter()
        .filter(|d| d.name == "error_page")
        .any(|d| d.args.last().is_some_and(|u| u == uri));
    let inner = loc.block.as_deref().unwrap_or(&[]);
    let only_files = inner.iter().all(|d| {
        matches!(
            d.name.as_str(),
            "root" | "alias" | "internal" | "access_log"
        )
    });
    if !target || !only_files {
        return false;
    }
    if inner.iter().any(|d| d.name == "internal") {
        out.note(
            loc,
            "the error page's file, read at load (`error_pages`)",
            false,
        );
        true
    } else {
        // A request for the page itself gets the file too: the location is a static route.
        let _ = uri;
        false
    }
}

/// An `if (COND) { … }` inside a location, as a route with `match`; `None` (reported) when the
/// condition or the block does not translate.
fn if_route(out: &mut Out, d: &Directive, location: &Route) -> Option<Route> {
    let cond = match parse_if(&d.args) {
        Ok(c) => c,
        Err(why) => {
            out.skip(d, why);
            return None;
        }
    };
    let mut r = Route {
        origin: format!(
            "if ({}) ({})",
            d.args.join(" ").trim_matches(['(', ')']),
            d.at()
        ),
        redirect: None,
        respond: None,
        ..location.clone()
    };
    match cond {
        IfCond::Match(c) => r.conditions.push(c),
        IfCond::Host(h) => r.host = Some(h),
    }
    let mut inner: Vec<&Directive> = d.block.iter().flatten().collect();
    inner.sort_by_key(|s| !matches!(s.name.as_str(), "proxy_pass" | "grpc_pass"));
    for s in inner {
        match s.name.as_str() {
            "return" => match translate_return(out, s) {
                Some(Return::Redirect(rd)) => r.redirect = Some(rd),
                Some(Return::Answer(a)) => r.respond = Some(a),
                None => {}
            },
            "proxy_pass" | "rewrite" | "add_header" | "proxy_set_header" | "set" => {
                location_directive(out, s, &mut r)
            }
            _ => out.skip(
                s,
                "inside `if`, only return, proxy_pass, rewrite and headers are translated",
            ),
        }
    }
    if r.redirect.is_some() || r.respond.is_some() {
        r.upstream = None;
    }
    Some(r)
}

enum IfCond {
    Match(Cond),
    /// `if ($host = x)`: a route for that host.
    Host(String),
}

/// nginx's `if` conditions on `$request_method`, `$http_NAME`, `$cookie_NAME` and `$host`
/// compared with `=`, `!=`, `~` or `~*` (the args are as the parser split them: `($http_x`,
/// `=`, `1)`).
fn parse_if(args: &[String]) -> Result<IfCond, String> {
    let text = args.join(" ");
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or("an `if` condition in parentheses was expected")?
        .trim();
    let unsupported = || {
        format!(
            "`if ({inner})` is not translated: $request_method, $http_*, $cookie_* and $host compared with =, !=, ~ or ~* are"
        )
    };
    let mut parts = inner.splitn(3, ' ');
    let (Some(var), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(unsupported());
    };
    let value = value.trim().trim_matches(['"', '\'']).to_string();
    if value.contains('$') {
        return Err(unsupported());
    }
    let test = match op {
        "=" => value.clone(),
        "!=" => format!("!{value}"),
        "~" | "~*" => {
            crate::config::validate::check_regex(&value)
                .map_err(|e| format!("{}: {e}", unsupported()))?;
            if op == "~*" {
                format!("~(?i){value}")
            } else {
                format!("~{value}")
            }
        }
        _ => return Err(unsupported()),
    };
    if var == "$request_method" && op == "=" {
        return Ok(IfCond::Match(Cond::Methods(vec![
            value.to_ascii_uppercase(),
        ])));
    }
    if var == "$host" && op == "=" {
        return Ok(IfCond::Host(value.to_ascii_lowercase()));
    }
    if let Some(h) = var.strip_prefix("$http_") {
        return Ok(IfCond::Match(Cond::Header(h.replace('_', "-"), test)));
    }
    if let Some(c) = var.strip_prefix("$cookie_") {
        return Ok(IfCond::Match(Cond::Cookie(c.to_string(), test)));
    }
    Err(unsupported())
}
