//! A strict, incremental check of HTTP/1.1 request heads, byte by byte as they arrive.
//!
//! The front door runs every byte of a request head through [`HeadScanner`] before pingora's
//! parser sees it, and rejects what RFC 9112 says a server must reject, or what nginx rejects,
//! whichever is stricter:
//!
//! - a bare CR anywhere (RFC 9112 §2.2), NUL and other control characters in the request line
//!   or a field value (RFC 9110 §5.5);
//! - whitespace between a field name and its colon (RFC 9112 §5.1), an empty or non-token
//!   field name (RFC 9110 §5.1), obs-fold line folding (RFC 9112 §5.2);
//! - more than one `Content-Length` field, even with equal values (RFC 9110 §8.6 allows
//!   either; nginx rejects, so do we), and `Content-Length` together with `Transfer-Encoding`
//!   (RFC 9112 §6.1 "ought to be handled as an error");
//! - more than one `Host` field (RFC 9112 §3.2), and a fragment in the target (RFC 9110 §4.2.5);
//! - a request line longer than [`MAX_REQUEST_LINE`] (414, RFC 9112 §3) and more than
//!   [`MAX_FIELDS`] fields (431, RFC 6585 §5).
//!
//! For an absolute-form request target, RFC 9112 §3.2.2 says the target's authority wins over
//! `Host`; pingora instead refuses a request whose two differ. The scanner therefore renames a
//! `Host` field of an absolute-form request in place to [`IGNORED_HOST`] (same length, so the
//! bytes stay aligned), and the proxy drops that field: pingora then takes the host from the
//! target. (If the field's name straddles two reads it cannot be renamed and pingora's 400
//! stands.)
//!
//! Bare LF line endings are accepted, as RFC 9112 §2.2 allows and nginx does.

/// Longest request line accepted (nginx's default buffer for it is 8 KiB too).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Most header fields in one request (HAProxy's default is 101; nginx has no count limit).
pub const MAX_FIELDS: u32 = 100;
/// The name a `Host` field of an absolute-form request is renamed to.
pub const IGNORED_HOST: &str = "x-sy";

/// How the body of a scanned request is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` (or `Content-Length: 0`).
    None,
    Length(u64),
    /// Any `Transfer-Encoding` (codings other than `chunked` are refused once parsed).
    Chunked,
}

/// Why a head is refused; each maps to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// 400, with the reason for the log.
    Bad(&'static str),
    /// 414
    UriTooLong,
    /// 431
    TooManyFields,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// All bytes belong to the head, which is not complete yet.
    More,
    /// The head ends after this many of the bytes.
    End(usize),
    Reject(Reject),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Before the request line (empty lines are skipped, RFC 9112 §2.2).
    Start,
    Method,
    Target,
    Version,
    /// CR seen in the request line.
    ReqLineCr,
    /// At the start of a field line (or of the final empty line).
    LineStart,
    /// CR at the start of a line: the head ends with the LF that must follow.
    EndCr,
    Name,
    Value,
    /// CR seen in a field value.
    ValueCr,
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Field value bytes: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5).
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80
}

#[derive(Debug, Clone)]
pub struct HeadScanner {
    st: St,
    line_len: usize,
    max_line: usize,
    fields: u32,
    /// The current field name, lower-cased, if short enough to be one we look for.
    name: [u8; 20],
    name_len: usize,
    /// Where the current name started in the chunk being fed (for the in-place rename).
    name_start: Option<usize>,
    /// The first bytes of the request target, to recognise the absolute form.
    target: [u8; 8],
    target_len: usize,
    absolute_form: bool,
    /// The first bytes of the method (to recognise `CONNECT`).
    method: [u8; 8],
    method_len: usize,
    content_length: u32,
    /// The value of `Content-Length`, as it is read.
    length: u64,
    /// Inside a `Content-Length` value: 0 before its digits, 1 in them, 2 after them.
    in_length: Option<u8>,
    transfer_encoding: u32,
    upgrade: bool,
    host: u32,
}

impl HeadScanner {
    /// `max_line`: the request line limit (at most [`MAX_REQUEST_LINE`]).
    pub fn new(max_line: usize) -> HeadScanner {
        HeadScanner {
            st: St::Start,
            line_len: 0,
            max_line: max_line.min(MAX_REQUEST_LINE),
            fields: 0,
            name: [0; 20],
            name_len: 0,
            name_start: None,
            target: [0; 8],
            target_len: 0,
            absolute_form: false,
            method: [0; 8],
            method_len: 0,
            content_length: 0,
            length: 0,
            in_length: None,
            transfer_encoding: 0,
            upgrade: false,
            host: 0,
        }
    }

    /// How the body of the scanned head is framed; meaningful once the head ended.
    pub fn framing(&self) -> Framing {
        if self.transfer_encoding > 0 {
            Framing::Chunked
        } else if self.length > 0 {
            Framing::Length(self.length)
        } else {
            Framing::None
        }
    }

    /// Whether the connection may stop speaking HTTP/1 after this request: an `Upgrade`
    /// request (RFC 9110 §7.8) or `CONNECT` (RFC 9110 §9.3.6).
    pub fn may_switch_protocols(&self) -> bool {
        self.upgrade || &self.method[..self.method_len] == b"CONNECT"
    }

    /// One byte of a `Content-Length` value: digits, optionally surrounded by whitespace.
    fn length_byte(&mut self, b: u8) -> Result<(), Reject> {
        match (b, self.in_length) {
            (b'0'..=b'9', Some(0 | 1)) => {
                self.length = self
                    .length
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')))
                    .ok_or(Reject::Bad("Content-Length too large"))?;
                self.in_length = Some(1);
            }
            (b' ' | b'\t', Some(0)) => {}
            (b' ' | b'\t', Some(_)) => self.in_length = Some(2),
            _ => return Err(Reject::Bad("invalid Content-Length value")),
        }
        Ok(())
    }

    /// The end of a field line.
    fn end_value(&mut self) -> Result<(), Reject> {
        if self.in_length.take() == Some(0) {
            return Err(Reject::Bad("empty Content-Length value"));
        }
        Ok(())
    }

    fn end_name(&mut self, chunk: &mut [u8]) {
        let name = &self.name[..self.name_len];
        match name {
            b"content-length" => {
                self.content_length += 1;
                self.in_length = Some(0);
            }
            b"transfer-encoding" => self.transfer_encoding += 1,
            b"upgrade" => self.upgrade = true,
            b"host" => {
                self.host += 1;
                if self.absolute_form
                    && let Some(start) = self.name_start
                {
                    chunk[start..start + 4].copy_from_slice(IGNORED_HOST.as_bytes());
                }
            }
            _ => {}
        }
    }

    fn finish(&self) -> Verdict {
        if self.content_length > 1 {
            return Verdict::Reject(Reject::Bad("more than one Content-Length field"));
        }
        if self.content_length > 0 && self.transfer_encoding > 0 {
            return Verdict::Reject(Reject::Bad(
                "Content-Length together with Transfer-Encoding",
            ));
        }
        if self.host > 1 {
            return Verdict::Reject(Reject::Bad("more than one Host field"));
        }
        Verdict::More
    }

    /// Feed the next bytes of the connection. The bytes may be modified (see [`IGNORED_HOST`]).
    pub fn feed(&mut self, chunk: &mut [u8]) -> Verdict {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            match self.st {
                St::Start => {
                    if b != b'\r' && b != b'\n' {
                        self.st = St::Method;
                        self.line_len = 0;
                        continue;
                    }
                }
                St::Method | St::Target | St::Version => {
                    self.line_len += 1;
                    if self.line_len > self.max_line {
                        return Verdict::Reject(Reject::UriTooLong);
                    }
                    match b {
                        b'\n' => self.st = St::LineStart,
                        b'\r' => self.st = St::ReqLineCr,
                        b' ' if self.st == St::Method => self.st = St::Target,
                        b' ' if self.st == St::Target => {
                            self.absolute_form = self.target[..self.target_len]
                                .starts_with(b"http://")
                                || self.target[..self.target_len].starts_with(b"https://");
                            self.st = St::Version;
                        }
                        0..=0x1f | 0x7f => {
                            return Verdict::Reject(Reject::Bad(
                                "control character in the request line",
                            ));
                        }
                        // RFC 9110 §4.2.5: a fragment is never part of a request target.
                        b'#' if self.st == St::Target => {
                            return Verdict::Reject(Reject::Bad("fragment in the request target"));
                        }
                        _ => {
                            if self.st == St::Target && self.target_len < self.target.len() {
                                self.target[self.target_len] = b.to_ascii_lowercase();
                                self.target_len += 1;
                            } else if self.st == St::Method && self.method_len < self.method.len() {
                                self.method[self.method_len] = b;
                                self.method_len += 1;
                            }
                        }
                    }
                }
                St::ReqLineCr => {
                    if b != b'\n' {
                        return Verdict::Reject(Reject::Bad("bare CR in the request line"));
                    }
                    self.st = St::LineStart;
                }
                St::LineStart => match b {
                    b'\n' => {
                        return match self.finish() {
                            Verdict::More => Verdict::End(i + 1),
                            reject => reject,
                        };
                    }
                    b'\r' => self.st = St::EndCr,
                    b' ' | b'\t' => return Verdict::Reject(Reject::Bad("obsolete line folding")),
                    _ if is_tchar(b) => {
                        self.fields += 1;
                        if self.fields > MAX_FIELDS {
                            return Verdict::Reject(Reject::TooManyFields);
                        }
                        self.st = St::Name;
                        self.name_len = 0;
                        self.name_start = Some(i);
                        continue;
                    }
                    b':' => return Verdict::Reject(Reject::Bad("empty field name")),
                    _ => return Verdict::Reject(Reject::Bad("invalid character in a field name")),
                },
                St::EndCr => {
                    if b != b'\n' {
                        return Verdict::Reject(Reject::Bad("bare CR at the end of the head"));
                    }
                    return match self.finish() {
                        Verdict::More => Verdict::End(i + 1),
                        reject => reject,
                    };
                }
                St::Name => match b {
                    b':' => {
                        self.end_name(chunk);
                        self.st = St::Value;
                    }
                    b' ' | b'\t' => {
                        return Verdict::Reject(Reject::Bad(
                            "whitespace between a field name and the colon",
                        ));
                    }
                    _ if is_tchar(b) => {
                        if self.name_len < self.name.len() {
                            self.name[self.name_len] = b.to_ascii_lowercase();
                        }
                        // Longer names are none of those we look for.
                        self.name_len = (self.name_len + 1).min(self.name.len());
                    }
                    _ => return Verdict::Reject(Reject::Bad("invalid character in a field name")),
                },
                St::Value if self.in_length.is_some() => match b {
                    b'\n' | b'\r' => {
                        if let Err(r) = self.end_value() {
                            return Verdict::Reject(r);
                        }
                        self.st = if b == b'\n' {
                            St::LineStart
                        } else {
                            St::ValueCr
                        };
                    }
                    _ => {
                        if let Err(r) = self.length_byte(b) {
                            return Verdict::Reject(r);
                        }
                    }
                },
                St::Value => {
                    // The common case: a run of ordinary value bytes.
                    let run = chunk[i..]
                        .iter()
                        .position(|c| !is_value_byte(*c))
                        .unwrap_or(chunk.len() - i);
                    i += run;
                    let Some(&c) = chunk.get(i) else {
                        break;
                    };
                    match c {
                        b'\n' => self.st = St::LineStart,
                        b'\r' => self.st = St::ValueCr,
                        _ => {
                            return Verdict::Reject(Reject::Bad(
                                "control character in a field value",
                            ));
                        }
                    }
                }
                St::ValueCr => {
                    if b != b'\n' {
                        return Verdict::Reject(Reject::Bad("bare CR in a field value"));
                    }
                    self.st = St::LineStart;
                }
            }
            i += 1;
        }
        // A name that continues into the next chunk cannot be renamed in place.
        if self.st == St::Name {
            self.name_start = None;
        }
        Verdict::More
    }
}

#[cfg(test)]
mod tests;
