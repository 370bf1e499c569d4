//! nginx's variables (SPEC §11): templates such as `https://$host$request_uri` compiled once at
//! load into literal parts and variables, and rendered per request from the request's facts.
//!
//! Compiling checks every name, so an unknown variable is a `check` error with its place in the
//! file, and a request never looks a name up. A template without variables renders to its text
//! without allocating. `$$` is a literal `$` (nginx has no escape; switchyard needs one for
//! values that hold a dollar sign). `$N` (a regex group) is allowed only where a regex gives
//! groups: `rewrite.to`.

pub mod map;
pub mod uri;

use http::{HeaderMap, HeaderValue, Method};
pub use map::Map;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// One variable, resolved at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Host,
    Hostname,
    RemoteAddr,
    RemotePort,
    ServerAddr,
    ServerPort,
    Scheme,
    RequestMethod,
    RequestUri,
    Uri,
    Args,
    IsArgs,
    RequestId,
    ProxyAddXForwardedFor,
    /// `$arg_NAME`: the first `NAME=` argument, as sent (not decoded), as nginx.
    Arg(String),
    /// `$http_NAME`: the request header, `_` read as `-`.
    Http(http::HeaderName),
    /// `$cookie_NAME`.
    Cookie(String),
    /// Response side: the server that answered (`host:port`).
    UpstreamAddr,
    /// Response side: the status sent.
    Status,
    /// A map defined under `maps` (index into the config's maps).
    Map(usize),
}

/// Variables with a fixed name, as nginx spells them.
const NAMED: [(&str, Var); 16] = [
    ("host", Var::Host),
    ("hostname", Var::Hostname),
    ("remote_addr", Var::RemoteAddr),
    ("remote_port", Var::RemotePort),
    ("server_addr", Var::ServerAddr),
    ("server_port", Var::ServerPort),
    ("scheme", Var::Scheme),
    ("request_method", Var::RequestMethod),
    ("request_uri", Var::RequestUri),
    ("uri", Var::Uri),
    ("args", Var::Args),
    ("is_args", Var::IsArgs),
    ("request_id", Var::RequestId),
    ("proxy_add_x_forwarded_for", Var::ProxyAddXForwardedFor),
    ("upstream_addr", Var::UpstreamAddr),
    ("status", Var::Status),
];

impl Var {
    /// Whether the variable is known only once a response exists.
    pub fn response_side(&self) -> bool {
        matches!(self, Var::UpstreamAddr | Var::Status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(Var),
    /// `$N`: group N of the regex that matched (only in `rewrite.to`).
    Group(usize),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// As written.
    text: String,
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a template may refer to where it is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// The names under `maps`, in order.
    pub maps: &'a [String],
    /// `$status` and `$upstream_addr` are known (response headers).
    pub response: bool,
    /// The number of regex groups `$N` may name (0: none).
    pub groups: usize,
}

impl Template {
    /// Compile `text`; the error says which name is wrong and why.
    pub fn compile(text: &str, scope: Scope<'_>) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            lit.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                lit.push('$');
                rest = after;
                continue;
            }
            let (name, after) = if let Some(inner) = rest.strip_prefix('{') {
                let Some(end) = inner.find('}') else {
                    return Err(format!("`${{` without its `}}` in `{text}`"));
                };
                (&inner[..end], &inner[end + 1..])
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            if name.is_empty() {
                return Err(format!(
                    "`$` must be followed by a variable name (write `$$` for a dollar sign) in `{text}`"
                ));
            }
            let part = if name.bytes().all(|b| b.is_ascii_digit()) {
                let n: usize = name
                    .parse()
                    .map_err(|_| format!("`${name}`: no such group"))?;
                if scope.groups == 0 {
                    return Err(format!(
                        "`${name}` is a regex group: groups exist only in `rewrite.to`"
                    ));
                }
                if n >= scope.groups {
                    return Err(format!(
                        "`${n}` refers to a group `from` does not have (it has {})",
                        scope.groups - 1
                    ));
                }
                Part::Group(n)
            } else {
                let var = resolve(name, scope.maps)?;
                if var.response_side() && !scope.response {
                    return Err(format!(
                        "`${name}` is known only once there is a response: use it in `response_headers`"
                    ));
                }
                Part::Var(var)
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = after;
        }
        lit.push_str(rest);
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            parts,
            text: text.to_string(),
        })
    }

    /// The text, when the template has no variables.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// The maps the template reads directly.
    pub fn maps(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(Var::Map(i)) => Some(*i),
            _ => None,
        })
    }

    /// The template's value for a request (`groups`: the regex groups of `rewrite.to`).
    pub fn render<'t>(&'t self, facts: &Facts<'_>) -> Cow<'t, str> {
        if let Some(s) = self.literal() {
            return Cow::Borrowed(s);
        }
        let mut out = String::new();
        self.render_into(facts, None, &mut out);
        Cow::Owned(out)
    }

    /// Append the value to `out`, with `groups` for `$N`.
    pub fn render_into(
        &self,
        facts: &Facts<'_>,
        groups: Option<&regex::Captures<'_>>,
        out: &mut String,
    ) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Group(n) => {
                    if let Some(m) = groups.and_then(|g| g.get(*n)) {
                        out.push_str(m.as_str());
                    }
                }
                Part::Var(v) => facts.append(v, out),
            }
        }
    }
}

/// The variable called `name`.
fn resolve(name: &str, maps: &[String]) -> Result<Var, String> {
    if let Some(i) = maps.iter().position(|m| m == name) {
        return Ok(Var::Map(i));
    }
    if let Some((_, v)) = NAMED.iter().find(|(n, _)| *n == name) {
        return Ok(v.clone());
    }
    let prefixed = |p: &str| name.strip_prefix(p).filter(|rest| !rest.is_empty());
    if let Some(arg) = prefixed("arg_") {
        return Ok(Var::Arg(arg.to_string()));
    }
    if let Some(cookie) = prefixed("cookie_") {
        return Ok(Var::Cookie(cookie.to_string()));
    }
    if let Some(h) = prefixed("http_") {
        return http::HeaderName::from_bytes(h.replace('_', "-").as_bytes())
            .map(Var::Http)
            .map_err(|_| format!("`$http_{h}`: not a header field name"));
    }
    let known = NAMED
        .iter()
        .map(|(n, _)| *n)
        .chain(maps.iter().map(String::as_str));
    let near = known
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min();
    Err(match near {
        Some((_, k)) => format!("unknown variable `${name}` (did you mean `{k}`?)"),
        None => format!("unknown variable `${name}`"),
    })
}

/// What a request's variables are made of. Everything is borrowed: building one costs nothing.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The request target as received, in origin form (path and query).
    pub target: &'a str,
    /// The host the request was routed by (`Host`, or the absolute target's authority).
    pub host: Option<&'a str>,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub tls: bool,
    pub request_id: Option<&'a str>,
    pub upstream_addr: Option<&'a str>,
    pub status: Option<u16>,
    pub maps: &'a [Map],
}

impl<'a> Facts<'a> {
    /// A request with nothing known beyond its head (tests, benches).
    pub fn of(method: &'a Method, headers: &'a HeaderMap, target: &'a str) -> Facts<'a> {
        Facts {
            method,
            headers,
            target,
            host: None,
            client: None,
            server: None,
            tls: false,
            request_id: None,
            upstream_addr: None,
            status: None,
            maps: &[],
        }
    }

    fn path(&self) -> &'a str {
        self.target.split('?').next().unwrap_or("")
    }

    fn args(&self) -> &'a str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// Append `var`'s value to `out`.
    pub fn append(&self, var: &Var, out: &mut String) {
        match var {
            Var::Host => out.push_str(&uri::normalize_host(self.host.unwrap_or(""))),
            Var::Hostname => out.push_str(hostname()),
            Var::RemoteAddr => {
                if let Some(a) = self.client {
                    let _ = write!(out, "{}", a.ip());
                }
            }
            Var::RemotePort => {
                if let Some(a) = self.client {
                    let _ = write!(out, "{}", a.port());
                }
            }
            Var::ServerAddr => {
                if let Some(a) = self.server {
                    let _ = write!(out, "{}", a.ip());
                }
            }
            Var::ServerPort => {
                if let Some(a) = self.server {
                    let _ = write!(out, "{}", a.port());
                }
            }
            Var::Scheme => out.push_str(if self.tls { "https" } else { "http" }),
            Var::RequestMethod => out.push_str(self.method.as_str()),
            Var::RequestUri => out.push_str(self.target),
            Var::Uri => match uri::normalize_path(self.path()) {
                Ok(p) => out.push_str(&p),
                Err(_) => out.push_str(self.path()),
            },
            Var::Args => out.push_str(self.args()),
            Var::IsArgs => {
                if !self.args().is_empty() {
                    out.push('?');
                }
            }
            Var::RequestId => out.push_str(self.request_id.unwrap_or("")),
            Var::ProxyAddXForwardedFor => {
                let before = out.len();
                for v in self.headers.get_all("x-forwarded-for") {
                    if let Ok(v) = v.to_str() {
                        if out.len() > before {
                            out.push_str(", ");
                        }
                        out.push_str(v);
                    }
                }
                if let Some(a) = self.client {
                    if out.len() > before {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{}", a.ip());
                }
            }
            Var::Arg(name) => {
                let found = self.args().split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    k.eq_ignore_ascii_case(name).then_some(v)
                });
                out.push_str(found.unwrap_or(""));
            }
            Var::Http(name) => {
                // Several fields of one name are joined, as nginx 1.23+ does (`; ` for Cookie).
                let sep = if name == http::header::COOKIE {
                    "; "
                } else {
                    ", "
                };
                let before = out.len();
                for v in self.headers.get_all(name) {
                    if out.len() > before {
                        out.push_str(sep);
                    }
                    out.push_str(&String::from_utf8_lossy(v.as_bytes()));
                }
            }
            Var::Cookie(name) => {
                if let Some(v) = uri::cookie(self.headers, name) {
                    out.push_str(&String::from_utf8_lossy(v));
                }
            }
            Var::UpstreamAddr => out.push_str(self.upstream_addr.unwrap_or("")),
            Var::Status => {
                if let Some(s) = self.status {
                    let _ = write!(out, "{s}");
                }
            }
            Var::Map(i) => {
                if let Some(m) = self.maps.get(*i) {
                    out.push_str(m.value(self));
                }
            }
        }
    }
}

/// The machine's host name (`$hostname`), read once.
fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
        // when the name fits, and the last byte is kept 0 in case it does not.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
        if rc != 0 {
            return String::new();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    })
}

/// A header value from a rendered template: control characters (which a decoded `$uri` may
/// hold) are percent-encoded instead of making the value invalid.
pub fn header_value(text: &str) -> HeaderValue {
    if let Ok(v) = HeaderValue::from_bytes(text.as_bytes()) {
        return v;
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii_control() && c != '\t' {
            let _ = write!(safe, "%{:02X}", c as u32);
        } else {
            safe.push(c);
        }
    }
    HeaderValue::from_bytes(safe.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests;
