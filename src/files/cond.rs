//! Validators and what a conditional or range request gets (RFC 9110 §13 and §14), for a
//! file of known length, modification time and strong `ETag`.

use http::HeaderMap;
use http::header::{
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
};
use std::time::{Duration, SystemTime};

/// The strong `ETag` nginx gives a file: `"MTIME-SIZE"`, both in lowercase hex.
pub fn etag(modified: SystemTime, len: u64) -> String {
    Etag::new(modified, len).as_str().to_string()
}

/// An `ETag` formatted on the stack (it is made for every answer from disk).
#[derive(Clone, Copy)]
pub struct Etag {
    buf: [u8; 36],
    len: usize,
}

impl Etag {
    pub fn new(modified: SystemTime, len: u64) -> Etag {
        let secs = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut e = Etag {
            buf: [0; 36],
            len: 0,
        };
        e.push(b'"');
        e.hex(secs);
        e.push(b'-');
        e.hex(len);
        e.push(b'"');
        e
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn hex(&mut self, mut n: u64) {
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(n & 15) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            self.push(d);
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII was written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("\"\"")
    }
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 304.
    NotModified,
    /// 412: `If-Match` or `If-Unmodified-Since` failed.
    PreconditionFailed,
    /// 416, with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

/// The answer to a `GET`/`HEAD` with `headers` for a file of `len` bytes, its `etag` and
/// `modified` time, in RFC 9110 §13.2.2's order. `ranges`: whether a `Range` may be honoured
/// (not when the answer is compressed on the fly). A `Range` of several ranges gets the whole
/// file (200), which RFC 9110 §14.2 allows; nginx sends `multipart/byteranges` instead.
pub fn decide(
    headers: &HeaderMap,
    etag: &str,
    modified: SystemTime,
    len: u64,
    ranges: bool,
) -> Answer {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if let Some(m) = text(IF_MATCH) {
        if !matches_any(m, etag, false) {
            return Answer::PreconditionFailed;
        }
    } else if let Some(date) = text(IF_UNMODIFIED_SINCE).and_then(parse_date)
        && secs(modified) > secs(date)
    {
        return Answer::PreconditionFailed;
    }
    if let Some(m) = text(IF_NONE_MATCH) {
        if matches_any(m, etag, true) {
            return Answer::NotModified;
        }
    } else if let Some(date) = text(IF_MODIFIED_SINCE).and_then(parse_date)
        // SPEC §12: not modified when the file is not newer than the date.
        && secs(modified) <= secs(date)
    {
        return Answer::NotModified;
    }
    let Some(range) = text(RANGE).filter(|_| ranges) else {
        return Answer::Full;
    };
    if let Some(if_range) = text(IF_RANGE) {
        let current = if if_range.starts_with('"') || if_range.starts_with("W/") {
            // A strong comparison: a weak tag never matches.
            if_range == etag
        } else {
            parse_date(if_range).is_some_and(|d| secs(d) == secs(modified))
        };
        if !current {
            return Answer::Full;
        }
    }
    range_of(range, len)
}

/// One `bytes=` range against `len`; anything else (other units, a syntax error, several
/// ranges) is the whole file, as RFC 9110 §14.2 allows.
pub fn range_of(range: &str, len: u64) -> Answer {
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return Answer::Full;
    };
    if spec.contains(',') {
        return Answer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Answer::Full;
    };
    let num = |t: &str| -> Option<u64> {
        let t = t.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    match (first.trim().is_empty(), num(first), num(last)) {
        // `bytes=-N`: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Answer::Unsatisfiable
            } else {
                Answer::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if let Some(end) = end
                && end < start
            {
                return Answer::Full;
            }
            if start >= len {
                return Answer::Unsatisfiable;
            }
            Answer::Partial {
                start,
                end: end.map_or(len - 1, |e| e.min(len - 1)),
            }
        }
        _ => Answer::Full,
    }
}

/// `If-Match` / `If-None-Match`: `*`, or a list containing `etag` (weakly compared for
/// `If-None-Match`, strongly for `If-Match`).
fn matches_any(list: &str, etag: &str, weak: bool) -> bool {
    if list.trim() == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|t| {
        if let Some(w) = t.strip_prefix("W/") {
            weak && w == etag
        } else {
            t == etag
        }
    })
}

fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn decide_with(fields: &[(http::HeaderName, &str)], len: u64) -> Answer {
        let mut h = HeaderMap::new();
        for (n, v) in fields {
            h.append(n.clone(), HeaderValue::from_str(v).unwrap());
        }
        decide(
            &h,
            &etag(at(1_700_000_000), len),
            at(1_700_000_000),
            len,
            true,
        )
    }

    #[test]
    fn etag_is_nginx_form() {
        assert_eq!(etag(at(0x655c_5a80), 0x1c), "\"655c5a80-1c\"");
    }

    #[test]
    fn ranges() {
        assert_eq!(
            range_of("bytes=0-9", 100),
            Answer::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            range_of("bytes=90-", 100),
            Answer::Partial { start: 90, end: 99 }
        );
        assert_eq!(
            range_of("bytes=-10", 100),
            Answer::Partial { start: 90, end: 99 }
        );
        assert_eq!(
            range_of("bytes=-500", 100),
            Answer::Partial { start: 0, end: 99 }
        );
        assert_eq!(
            range_of("bytes=50-500", 100),
            Answer::Partial { start: 50, end: 99 }
        );
        assert_eq!(range_of("bytes=100-", 100), Answer::Unsatisfiable);
        assert_eq!(range_of("bytes=-0", 100), Answer::Unsatisfiable);
        assert_eq!(range_of("bytes=0-0", 0), Answer::Unsatisfiable);
        // Syntax the server may ignore: the whole file.
        for r in [
            "bytes=9-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(range_of(r, 100), Answer::Full, "{r}");
        }
    }

    #[test]
    fn conditionals_in_rfc_order() {
        let tag = etag(at(1_700_000_000), 100);
        let old = "Tue, 14 Nov 2023 22:13:19 GMT"; // one second before
        let same = "Tue, 14 Nov 2023 22:13:20 GMT";
        assert_eq!(
            decide_with(&[(IF_NONE_MATCH, &tag)], 100),
            Answer::NotModified
        );
        assert_eq!(
            decide_with(&[(IF_NONE_MATCH, &format!("W/{tag}"))], 100),
            Answer::NotModified
        );
        assert_eq!(
            decide_with(&[(IF_NONE_MATCH, "\"x\", *")], 100),
            Answer::Full
        );
        assert_eq!(
            decide_with(&[(IF_NONE_MATCH, "*")], 100),
            Answer::NotModified
        );
        assert_eq!(
            decide_with(&[(IF_MODIFIED_SINCE, same)], 100),
            Answer::NotModified
        );
        assert_eq!(decide_with(&[(IF_MODIFIED_SINCE, old)], 100), Answer::Full);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            decide_with(
                &[(IF_NONE_MATCH, "\"other\""), (IF_MODIFIED_SINCE, same)],
                100
            ),
            Answer::Full
        );
        assert_eq!(
            decide_with(&[(IF_MATCH, "\"other\"")], 100),
            Answer::PreconditionFailed
        );
        assert_eq!(
            decide_with(&[(IF_UNMODIFIED_SINCE, old)], 100),
            Answer::PreconditionFailed
        );
        assert_eq!(
            decide_with(&[(RANGE, "bytes=0-1"), (IF_RANGE, &tag)], 100),
            Answer::Partial { start: 0, end: 1 }
        );
        assert_eq!(
            decide_with(&[(RANGE, "bytes=0-1"), (IF_RANGE, "\"old\"")], 100),
            Answer::Full
        );
        assert_eq!(
            decide_with(
                &[(RANGE, "bytes=0-1"), (IF_RANGE, &format!("W/{tag}"))],
                100
            ),
            Answer::Full
        );
        assert_eq!(
            decide_with(&[(RANGE, "bytes=0-1"), (IF_RANGE, same)], 100),
            Answer::Partial { start: 0, end: 1 }
        );
        assert_eq!(
            decide_with(&[(RANGE, "bytes=0-1"), (IF_RANGE, old)], 100),
            Answer::Full
        );
    }
}
