//! A `server` block: its listeners, names, TLS settings, server-wide redirect, and its
//! prefix locations as routes.

use super::*;

pub(super) fn server(out: &mut Out, d: &Directive, http_compress: bool) {
    let block = d.block.as_deref().unwrap_or(&[]);
    let mut listens: Vec<(String, bool, bool)> = Vec::new();
    let mut hosts: Vec<String> = Vec::new();
    let (mut cert, mut key, mut min_version) = (None, None, None);
    let mut compress = http_compress;
    let mut server_route = Route::default();
    let mut redirect_all = None;
    for s in block {
        let a0 = s.args.first().cloned().unwrap_or_default();
        match s.name.as_str() {
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
                listens.push((addr, ssl, h2));
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
            "return" => match return_redirect(s) {
                Some(r) => redirect_all = Some((s.clone(), r)),
                None => out.skip(s, "only `return 301|302|307|308 URL` is translated"),
            },
            "location" | "include" => {}
            "add_header" | "proxy_hide_header" | "allow" | "deny" | "proxy_set_header"
            | "limit_req" | "rewrite" => location_directive(out, s, &mut server_route),
            "proxy_pass"
            | "proxy_connect_timeout"
            | "proxy_read_timeout"
            | "proxy_send_timeout"
            | "proxy_next_upstream"
            | "proxy_next_upstream_tries"
            | "proxy_next_upstream_timeout"
            | "proxy_http_version" => location_directive(out, s, &mut server_route),
            _ => common(out, s, None),
        }
    }
    if listens.is_empty() {
        listens.push(("0.0.0.0:80".into(), false, false));
    }
    let plain_redirect = redirect_all.as_ref().is_some_and(|(_, (to, _))| {
        to.starts_with("https://$host") || to.starts_with("https://$server_name")
    });
    for (addr, ssl, h2) in &listens {
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
        if *ssl {
            if let (Some(c), Some(k)) = (&cert, &key)
                && !l.certs.contains(&(c.clone(), k.clone()))
            {
                l.certs.push((c.clone(), k.clone()));
            }
            if min_version.is_some() {
                l.min_version.clone_from(&min_version);
            }
        } else if plain_redirect && block.iter().all(|s| s.name != "location") {
            l.redirect_only = true;
        }
    }
    if let Some((d, _)) = &redirect_all
        && listens.iter().all(|(_, ssl, _)| !ssl)
        && plain_redirect
    {
        out.note(d, "a `redirect_https` listener", false);
        return;
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
    if let Some((rd, (to, status))) = &redirect_all {
        for h in &host_list {
            out.routes.push(Route {
                origin: format!("return {status} {to} ({})", rd.at()),
                host: h.clone(),
                path: "/".into(),
                redirect: Some((to.clone(), *status)),
                ..server_route.clone()
            });
        }
        return;
    }
    for loc in locations {
        let Some((path, exact)) = location_path(loc) else {
            out.skip(
                loc,
                "regex and named locations are not translated (prefix locations are)",
            );
            continue;
        };
        if exact {
            out.note(loc, "an exact-match location becomes a prefix route", false);
        }
        let mut r = Route {
            origin: format!("location {} ({})", loc.args.join(" "), loc.at()),
            path: path.clone(),
            compress,
            ..server_route.clone()
        };
        // `proxy_pass` first: the per-pool directives of the location need its pool.
        let mut inner: Vec<&Directive> = loc.block.iter().flatten().collect();
        inner.sort_by_key(|s| s.name != "proxy_pass");
        for s in inner {
            match s.name.as_str() {
                "gzip" => r.compress = s.args.first().is_some_and(|a| a == "on"),
                "return" => match return_redirect(s) {
                    Some(rd) => r.redirect = Some(rd),
                    None => out.skip(s, "only `return 301|302|307|308 URL` is translated"),
                },
                "client_max_body_size" => common(out, s, Some(&mut r)),
                _ => location_directive(out, s, &mut r),
            }
        }
        if r.upstream.is_none() && r.redirect.is_none() {
            out.skip(
                loc,
                "a location without `proxy_pass` or `return` (static files are not served)",
            );
            continue;
        }
        for h in &host_list {
            let mut route = r.clone();
            route.host = h.clone();
            route.path.clone_from(&path);
            out.routes.push(route);
        }
    }
}
