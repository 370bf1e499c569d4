//! Which requests a route takes (SPEC §3, §11), as validated: its host, its path form, the
//! listeners it serves and the conditions on the request.

use http::{HeaderName, Method};

/// A route's host, with nginx's `server_name` forms.
#[derive(Debug, Clone)]
pub enum HostMatch {
    Any,
    /// Lower-case host without port.
    Exact(String),
    /// Leading wildcard: `*.example.com` is stored as `.example.com`.
    Wildcard(String),
    /// Trailing wildcard: `www.example.*` is stored as `www.example.`.
    Trailing(String),
    /// `~REGEX`, searched in the lower-cased host (nginx anchors nothing either).
    Regex(regex::Regex),
}

impl PartialEq for HostMatch {
    fn eq(&self, other: &HostMatch) -> bool {
        match (self, other) {
            (HostMatch::Any, HostMatch::Any) => true,
            (HostMatch::Exact(a), HostMatch::Exact(b))
            | (HostMatch::Wildcard(a), HostMatch::Wildcard(b))
            | (HostMatch::Trailing(a), HostMatch::Trailing(b)) => a == b,
            (HostMatch::Regex(a), HostMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl HostMatch {
    /// As written in the config (`*.example.com`, `www.example.*`, `~REGEX`), empty for any.
    pub fn label(&self) -> String {
        match self {
            HostMatch::Any => String::new(),
            HostMatch::Exact(h) => h.clone(),
            HostMatch::Wildcard(s) => format!("*{s}"),
            HostMatch::Trailing(p) => format!("{p}*"),
            HostMatch::Regex(re) => format!("~{}", re.as_str()),
        }
    }
}

/// A route's path form (nginx's `location` modifiers).
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// `path`: a prefix; the longest wins. `stop_regex` is nginx's `^~`.
    Prefix { prefix: String, stop_regex: bool },
    /// `exact`: the whole path (nginx `location =`).
    Exact(String),
    /// `regex` (nginx `~`, or `~*` when built case-insensitive), searched in the path.
    Regex(regex::Regex),
}

impl PathMatch {
    /// The part of the path `strip_prefix` removes: the prefix or the exact path; nothing for a
    /// regex (the loader refuses `strip_prefix` there).
    pub fn prefix(&self) -> &str {
        match self {
            PathMatch::Prefix { prefix, .. } => prefix,
            PathMatch::Exact(p) => p,
            PathMatch::Regex(_) => "",
        }
    }

    /// As written, with nginx's modifier: `/api/`, `^~/static/`, `=/login`, `~\.php$`.
    pub fn label(&self) -> String {
        match self {
            PathMatch::Prefix {
                prefix,
                stop_regex: false,
            } => prefix.clone(),
            PathMatch::Prefix { prefix, .. } => format!("^~{prefix}"),
            PathMatch::Exact(p) => format!("={p}"),
            PathMatch::Regex(re) => format!("~{}", re.as_str()),
        }
    }
}

/// A route's `match`: every condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Empty: any method.
    pub methods: Vec<Method>,
    pub headers: Vec<(HeaderName, ValueTest)>,
    pub cookies: Vec<(String, ValueTest)>,
}

/// A test on a header's or a cookie's value.
#[derive(Debug, Clone)]
pub enum ValueTest {
    /// `VALUE`: present with exactly this value.
    Is(String),
    /// `!VALUE`: absent, or present with another value.
    IsNot(String),
    /// `~REGEX`: present, and the regex finds a match in it (unanchored, as nginx's `~`).
    Search(regex::Regex),
}

impl ValueTest {
    /// Whether the test holds for a value (`None`: the header or cookie is absent).
    pub fn holds(&self, value: Option<&[u8]>) -> bool {
        match (self, value) {
            (ValueTest::Is(want), Some(v)) => v == want.as_bytes(),
            (ValueTest::Is(_), None) => false,
            (ValueTest::IsNot(want), v) => v != Some(want.as_bytes()),
            (ValueTest::Search(re), Some(v)) => {
                std::str::from_utf8(v).is_ok_and(|v| re.is_match(v))
            }
            (ValueTest::Search(_), None) => false,
        }
    }
}
