//! nginx's static-file directives (`root`, `alias`, `index`, `try_files`, `expires`,
//! `gzip_static`, `autoindex`, `internal`) as a route's `static` block (SPEC §12), with a
//! `try_files … @name` fallback resolved to the pool its named location proxies to.

use super::*;

/// A location's (or its server's) file directives, as written.
#[derive(Default, Clone)]
pub(super) struct Files {
    pub root: Option<String>,
    pub alias: Option<String>,
    pub index: Option<Vec<String>>,
    pub try_files: Option<Vec<String>>,
    pub expires: Option<String>,
    pub precompressed: bool,
    pub autoindex: bool,
    /// The route serves files (decided once its location is read).
    pub serve: bool,
}

/// nginx's compiled-in root on Debian (`html` under its prefix), used when nothing sets one.
const DEFAULT_ROOT: &str = "/usr/share/nginx/html";

/// A file directive of a location or server; `false` when `s` is not one.
pub(super) fn file_directive(out: &mut Out, s: &Directive, r: &mut Route) -> bool {
    let a0 = s.args.first().cloned().unwrap_or_default();
    let f = &mut r.files;
    match s.name.as_str() {
        "root" => {
            f.root = Some(a0);
            f.alias = None;
        }
        "alias" => {
            if matches!(r.loc, Loc::Regex { .. }) {
                out.skip(
                    s,
                    "`alias` in a regex location (built from its captures) is not translated; use `root`",
                );
            } else {
                f.alias = Some(a0);
                f.root = None;
            }
        }
        "index" => {
            let (names, odd): (Vec<&String>, Vec<&String>) = s
                .args
                .iter()
                .partition(|n| !n.contains(['$', '/']) && !n.is_empty());
            if !odd.is_empty() {
                out.skip(s, "index names with variables or paths are not translated");
            }
            f.index = Some(names.into_iter().cloned().collect());
        }
        "try_files" => {
            if s.args.len() < 2 {
                out.skip(s, "nginx needs a file and a fallback");
                return true;
            }
            for a in &s.args {
                let plain = a.starts_with('=') || a.starts_with('@');
                if !plain && let Err(why) = out.template(a, false, 0) {
                    out.skip(s, why);
                    return true;
                }
            }
            f.try_files = Some(s.args.clone());
        }
        "expires" => match s.args.as_slice() {
            [v] if v == "off" || v == "max" || v == "epoch" => f.expires = Some(v.clone()),
            [v] if v.starts_with('-') => {
                f.expires = Some("epoch".into());
                out.note(
                    s,
                    "a negative time is carried as `epoch` (Cache-Control: no-cache)",
                    false,
                );
            }
            [v] if crate::config::units::parse_duration(&duration(v)).is_ok() => {
                f.expires = Some(duration(v));
            }
            _ => out.skip(s, "only `expires TIME|max|epoch|off` is translated"),
        },
        "gzip_static" => {
            f.precompressed = a0 == "on" || a0 == "always";
            if f.precompressed {
                out.note(
                    s,
                    "`precompressed` also serves FILE.br to clients that accept br",
                    false,
                );
            }
        }
        "autoindex" => f.autoindex = a0 == "on",
        "internal" => r.internal = true,
        _ => return false,
    }
    true
}

/// Decide whether a location's route serves files, and resolve its `try_files` fallback. A
/// location serves files when it has `try_files`, or neither `proxy_pass` nor `return`.
pub(super) fn finish(out: &mut Out, loc: &Directive, r: &mut Route) {
    let proxies = r.upstream.is_some();
    let answers = r.redirect.is_some() || r.respond.is_some();
    if answers || (proxies && r.files.try_files.is_none()) {
        return;
    }
    let falls_back_to_a_name = r
        .files
        .try_files
        .as_ref()
        .and_then(|l| l.last())
        .is_some_and(|l| l.starts_with('@'));
    if proxies && !falls_back_to_a_name {
        out.skip(
            loc,
            "`try_files` beside `proxy_pass` is not translated (nginx proxies what it finds): the location only proxies",
        );
        r.files.try_files = None;
        return;
    }
    if let Some(list) = r.files.try_files.clone()
        && let Some(name) = list.last().and_then(|l| l.strip_prefix('@'))
    {
        let Some(named) = named_location(out, name) else {
            out.skip(
                loc,
                format!("`try_files` falls back to `@{name}`, which does not proxy (only a named location with `proxy_pass` is translated)"),
            );
            return;
        };
        r.upstream = named.upstream;
        r.proxy_host = named.proxy_host;
        if r.request_set.is_empty() {
            r.request_set = named.request_set;
        }
        if r.host_header.is_none() {
            r.host_header = named.host_header;
        }
        if r.response_set.is_empty() {
            r.response_set = named.response_set;
        }
        r.files.try_files = Some(list[..list.len() - 1].to_vec());
    }
    if r.files.root.is_none() && r.files.alias.is_none() {
        r.files.root = Some(DEFAULT_ROOT.into());
        out.note(
            loc,
            format!("no `root`: nginx's own, {DEFAULT_ROOT}, is served"),
            false,
        );
    }
    r.files.serve = true;
}

/// The route `location @name { … }` of the server being read would be: its pool and headers;
/// `None` when it has no `proxy_pass`.
fn named_location(out: &mut Out, name: &str) -> Option<Route> {
    let block = out
        .server_block
        .iter()
        .find(|d| {
            d.name == "location" && matches!(d.args.as_slice(), [m, n] if m == "@" && n == name)
                || matches!(d.args.as_slice(), [n] if n.strip_prefix('@') == Some(name))
        })?
        .block
        .clone()?;
    let mut r = Route::default();
    let mut inner: Vec<&Directive> = block.iter().collect();
    inner.sort_by_key(|s| s.name != "proxy_pass");
    for s in inner {
        location_directive(out, s, &mut r);
    }
    r.upstream.is_some().then_some(r)
}

/// Whether some `try_files` of the server being read falls back to `@name`.
pub(super) fn named_is_used(out: &Out, name: &str) -> bool {
    fn uses(block: &[Directive], name: &str) -> bool {
        block.iter().any(|d| {
            (d.name == "try_files" && d.args.last().and_then(|a| a.strip_prefix('@')) == Some(name))
                || d.block.as_deref().is_some_and(|b| uses(b, name))
        })
    }
    uses(&out.server_block, name)
}

/// A server's own `root` and `try_files`, which nginx applies to what no location takes: a
/// catch-all route when no `location /` takes everything (`catch_all`), else reported.
pub(super) fn server_catch_all(
    out: &mut Out,
    block: &[Directive],
    catch_all: bool,
    server_try_files: Option<&Directive>,
    server_files: Files,
    base: &Route,
    host_list: &[Option<String>],
) {
    let root = block.iter().find(|d| d.name == "root");
    match (catch_all, server_try_files.or(root)) {
        (true, Some(d)) => {
            // nginx serves the server's `root` (and its `try_files`) to what no location
            // takes.
            let mut r = Route {
                origin: format!(
                    "the server's {} ({}), for what no location takes",
                    d.name,
                    d.at()
                ),
                loc: Loc::Prefix {
                    path: "/".into(),
                    stop_regex: false,
                },
                files: server_files,
                upstream: None,
                ..base.clone()
            };
            files::finish(out, d, &mut r);
            if r.files.serve {
                super::server::forwarded_host(&mut r);
                for h in host_list {
                    out.routes.push(Route {
                        host: h.clone(),
                        ..r.clone()
                    });
                }
            }
        }
        (false, _) => {
            if let Some(d) = server_try_files {
                out.skip(
                    d,
                    "nginx applies a server's `try_files` only to requests no location takes, and `location /` takes them all",
                );
            }
        }
        (true, None) => {}
    }
}

/// The `static` block of a route.
pub(super) fn render(y: &mut String, f: &Files) {
    y.push_str("\n    static:");
    if let Some(a) = &f.alias {
        let _ = write!(y, "\n      alias: {}", yaml_str(a));
    } else if let Some(r) = &f.root {
        let _ = write!(y, "\n      root: {}", yaml_str(r));
    }
    if let Some(index) = &f.index {
        let list: Vec<String> = index.iter().map(|s| yaml_str(s)).collect();
        let _ = write!(y, "\n      index: [{}]", list.join(", "));
    }
    if let Some(t) = &f.try_files {
        let list: Vec<String> = t.iter().map(|s| yaml_str(s)).collect();
        let _ = write!(y, "\n      try_files: [{}]", list.join(", "));
    }
    if let Some(e) = &f.expires {
        let _ = write!(y, "\n      expires: {}", yaml_str(e));
    }
    if f.precompressed {
        y.push_str("\n      precompressed: true");
    }
    if f.autoindex {
        y.push_str("\n      autoindex: true");
    }
}
