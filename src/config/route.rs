//! Route policies (SPEC §8), as validated.

use crate::vars::Template;
use http::HeaderName;
use std::sync::Arc;
use std::time::Duration;

/// What a route does besides choosing a pool (SPEC §8). The default does nothing.
#[derive(Debug, Clone, Default)]
pub struct RoutePolicy {
    /// Send the path without the route's prefix.
    pub strip_prefix: bool,
    pub rewrite: Option<Rewrite>,
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
    pub access: Option<Access>,
    pub rate_limit: Option<RateLimit>,
    /// Overrides `limits.max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    pub compress: bool,
    pub redirect: Option<RedirectTo>,
    pub respond: Option<Respond>,
    /// The route's own `error_pages` (replacing the top level's), when it has any.
    pub error_pages: Option<Arc<ErrorPages>>,
    /// Upstream answers with a status in the error pages get the page (nginx
    /// `proxy_intercept_errors`).
    pub intercept_errors: bool,
    /// `static`: files served from disk (SPEC §12).
    pub static_files: Option<Arc<super::StaticFiles>>,
    /// Only reachable by an internal redirect (nginx `internal`).
    pub internal: bool,
}

impl RoutePolicy {
    /// Whether the route only routes (the request path does no per-route work).
    pub fn is_plain(&self) -> bool {
        !self.strip_prefix
            && self.rewrite.is_none()
            && self.request_headers.is_empty()
            && self.response_headers.is_empty()
            && self.access.is_none()
            && self.rate_limit.is_none()
            && self.max_body_bytes.is_none()
            && !self.compress
            && self.redirect.is_none()
            && self.respond.is_none()
            && self.error_pages.is_none()
            && !self.intercept_errors
            && self.static_files.is_none()
            && !self.internal
    }
}

/// `respond`: the route answers itself (nginx `return STATUS [TEXT]`).
#[derive(Debug, Clone)]
pub struct Respond {
    /// 444: close the connection without an answer, as nginx does.
    pub status: u16,
    /// The body when it has no variables.
    pub body: bytes::Bytes,
    /// The body's template when it has variables.
    pub body_template: Option<Template>,
    pub headers: Vec<(HeaderName, FieldValue)>,
}

impl Respond {
    /// nginx's `return 444`: no answer at all.
    pub const CLOSE: u16 = 444;
}

#[derive(Debug, Clone)]
pub struct Rewrite {
    pub from: regex::Regex,
    /// Replaces what `from` matched: `$1`.. are `from`'s groups, other `$NAME`s variables.
    pub to: Template,
}

/// A header field's value: fixed, or a template rendered per request (an empty result
/// removes the field, as nginx's `proxy_set_header X "";`).
#[derive(Debug, Clone)]
pub enum FieldValue {
    Fixed(http::HeaderValue),
    Template(Template),
}

/// Header fields to set (replacing any of the same name) and to remove.
#[derive(Debug, Clone, Default)]
pub struct HeaderOps {
    pub set: Vec<(HeaderName, FieldValue)>,
    pub remove: Vec<HeaderName>,
}

/// A file answered for an error status (nginx `error_page`), read at load.
#[derive(Debug)]
pub struct ErrorPage {
    pub path: std::path::PathBuf,
    pub body: bytes::Bytes,
    /// From the file's extension (`text/html` for `.html`).
    pub content_type: http::HeaderValue,
}

/// Statuses and their pages.
#[derive(Debug, Default)]
pub struct ErrorPages(pub Vec<(u16, Arc<ErrorPage>)>);

impl ErrorPages {
    pub fn get(&self, status: u16) -> Option<&ErrorPage> {
        self.0.iter().find(|(s, _)| *s == status).map(|(_, p)| &**p)
    }
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// `allow` / `deny` CIDR lists: deny wins; with an allow list, everyone else is denied.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub allow: Vec<ipnet::IpNet>,
    pub deny: Vec<ipnet::IpNet>,
}

impl Access {
    pub fn permits(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
    pub burst: u32,
    pub key: RateKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    ClientIp,
    Header(HeaderName),
}

#[derive(Debug, Clone)]
pub struct RedirectTo {
    /// The `Location`, rendered per request.
    pub to: Template,
    pub status: u16,
}
