//! Facts read from a request's target and fields: its host and cookies, and the path routes
//! are matched against, nginx's `$uri` — percent-decoded, with `//` merged and
//! `.` and `..` segments resolved. The request is forwarded as the client sent it (as nginx's
//! `proxy_pass` without a URI part does); only the routing decision uses this form, so
//! `/%61dmin`, `//admin` and `/x/../admin` all take the route of `/admin`.

use std::borrow::Cow;

/// A path that cannot name anything under the root: `..` above `/`, or a broken `%` escape.
/// nginx answers both `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPath;

/// The normalized form of `path` (which starts with `/`; anything else is returned as it is).
/// Borrows when there is nothing to change, the common case, found in one pass over the bytes.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, InvalidPath> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return Ok(Cow::Borrowed(path));
    }
    let plain = !b
        .windows(2)
        .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'))
        && !b.contains(&b'%');
    if plain {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(b)?;
    let ends_open = |seg: &[u8]| seg.is_empty() || seg == b"." || seg == b"..";
    let mut parts: Vec<&[u8]> = Vec::new();
    let segments: Vec<&[u8]> = decoded[1..].split(|c| *c == b'/').collect();
    let trailing = segments.last().is_some_and(|s| ends_open(s));
    for seg in &segments {
        match *seg {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(InvalidPath);
                }
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() || trailing {
        out.push(b'/');
    }
    Ok(Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        // Bytes that are not UTF-8 match no route's text but their own replacement.
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

fn decode(b: &[u8]) -> Result<Vec<u8>, InvalidPath> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(InvalidPath);
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The value of cookie `name` in the `Cookie` fields of `headers`.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

/// Lower-case, without port or trailing dot. Borrows unless the host has upper-case letters.
pub fn normalize_host(host: &str) -> std::borrow::Cow<'_, str> {
    let without_port = if host.starts_with('[') {
        // IPv6 literal: keep up to the closing bracket.
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let h = without_port.trim_end_matches('.');
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(h.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, InvalidPath> {
        normalize_path(p).map(Cow::into_owned)
    }

    #[test]
    fn plain_paths_are_borrowed_as_they_are() {
        for p in ["/", "/a/b", "/a/b/", "/a.b/c.d", "/a-b?"] {
            assert!(matches!(normalize_path(p), Ok(Cow::Borrowed(x)) if x == p));
        }
    }

    #[test]
    fn paths_are_decoded_merged_and_resolved_as_nginx_does() {
        assert_eq!(n("/%61dmin").unwrap(), "/admin");
        assert_eq!(n("//admin//x").unwrap(), "/admin/x");
        assert_eq!(n("/x/../admin").unwrap(), "/admin");
        assert_eq!(n("/x/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(n("/a/./b/").unwrap(), "/a/b/");
        assert_eq!(n("/a/.").unwrap(), "/a/");
        assert_eq!(n("/a/..").unwrap(), "/");
        assert_eq!(n("/a%2Fb").unwrap(), "/a/b");
        assert_eq!(n("/.hidden").unwrap(), "/.hidden");
        assert_eq!(n("/a/..b").unwrap(), "/a/..b");
    }

    #[test]
    fn climbing_above_the_root_or_a_broken_escape_is_invalid() {
        assert_eq!(n("/.."), Err(InvalidPath));
        assert_eq!(n("/a/../../b"), Err(InvalidPath));
        assert_eq!(n("/%2e%2e/x"), Err(InvalidPath));
        assert_eq!(n("/a%zz"), Err(InvalidPath));
        assert_eq!(n("/a%2"), Err(InvalidPath));
    }
}
