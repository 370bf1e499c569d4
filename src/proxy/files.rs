//! A `static` route's answers (SPEC §12): `try_files`, index files, listings, and a file sent
//! with its validators, a range of it, or `304`. What is found on disk and what a conditional
//! request gets are decided in `crate::files`; this writes the answer.

use super::Ctx;
use super::request::{facts, local_addr, route_target};
use crate::config::{Expires, Fallback, StaticFiles, TryFile};
use crate::files::cond::{self, Answer};
use crate::files::{self, Found, Opened};
use crate::policy;
use crate::router;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, header};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A file is read and sent in pieces of at most this size: the memory one download holds.
pub const CHUNK: usize = 256 * 1024;

/// What a static route did with a request.
pub(super) enum Served {
    /// It was answered.
    Answered,
    /// Nothing was found: the route's upstream answers.
    Upstream,
    /// Route the request again with this target (nginx's internal redirect).
    Redirect(String),
}

/// Where a route's files are: its `static` block and the prefix `alias` replaces.
pub(super) struct Site<'a> {
    pub files: &'a StaticFiles,
    pub prefix: &'a str,
    /// The route's `compress`: files without a precompressed twin are compressed on the fly.
    pub compress: bool,
}

impl Site<'_> {
    fn open(&self, uri: &str) -> Found {
        match files::file_for(&self.files.dir, self.files.alias, self.prefix, uri) {
            Some(path) => self.open_path(path),
            None => Found::Missing,
        }
    }

    fn open_path(&self, path: std::path::PathBuf) -> Found {
        let f = self.files;
        let now = Instant::now();
        if let Some(kept) = f.open_files.get(&path, now) {
            return Found::File(kept);
        }
        let found = files::open(path, &f.dir, f.real_dir.as_deref(), f.follow_symlinks);
        if let Found::File(file) = &found {
            f.open_files.put(file, now);
        }
        found
    }
}

/// Answer a request on a static route.
pub(super) async fn serve(session: &mut Session, ctx: &mut Ctx, site: &Site<'_>) -> Result<Served> {
    let uri = {
        let (_, raw) = route_target(session.req_header());
        router::normalize_path(raw).map(Cow::into_owned)
    };
    let uri = match uri {
        Ok(u) if !u.contains(['\0', '\\']) => u,
        // A NUL or a backslash names no file a client may ask for.
        _ => {
            ctx.send_error(session, 400, false, None).await?;
            return Ok(Served::Answered);
        }
    };
    for entry in &site.files.try_files {
        let candidate: Cow<'_, str> = match entry {
            TryFile::Uri => Cow::Borrowed(&uri),
            TryFile::UriDir if uri.ends_with('/') => Cow::Borrowed(&uri),
            TryFile::UriDir => Cow::Owned(format!("{uri}/")),
            TryFile::Template(t) => Cow::Owned(t.render(&facts(session, ctx, None)).into_owned()),
        };
        // nginx: an entry ending in `/` is tried as a directory, any other as a file.
        match site.open(&candidate) {
            // nginx: the request continues as the directory, which without its `/` is
            // redirected to it.
            Found::Dir(_) if candidate.ends_with('/') && !uri.ends_with('/') => {
                slash_redirect(session, ctx, site, &uri).await?;
                return Ok(Served::Answered);
            }
            Found::Dir(dir) if candidate.ends_with('/') => {
                directory(session, ctx, site, &dir, &candidate).await?;
                return Ok(Served::Answered);
            }
            Found::File(file) if !candidate.ends_with('/') => {
                send_file(session, ctx, site, file).await?;
                return Ok(Served::Answered);
            }
            _ => {}
        }
    }
    match &site.files.fallback {
        Fallback::Upstream => Ok(Served::Upstream),
        Fallback::Status(code) => {
            ctx.send_error(session, *code, true, None).await?;
            Ok(Served::Answered)
        }
        Fallback::Redirect(t) => Ok(Served::Redirect(
            t.render(&facts(session, ctx, None)).into_owned(),
        )),
        Fallback::Serve => {
            the_uri(session, ctx, site, &uri).await?;
            Ok(Served::Answered)
        }
    }
}

/// nginx's own handling of a path without `try_files`: the file; a directory's index (or
/// `301` to the path with its `/`); `404`, or `403` for what cannot be read.
async fn the_uri(session: &mut Session, ctx: &mut Ctx, site: &Site<'_>, uri: &str) -> Result<()> {
    if !get_or_head(session) {
        return not_allowed(session, ctx).await;
    }
    match site.open(uri) {
        Found::File(file) => send_file(session, ctx, site, file).await,
        Found::Dir(dir) if uri.ends_with('/') => directory(session, ctx, site, &dir, uri).await,
        Found::Dir(_) => slash_redirect(session, ctx, site, uri).await,
        Found::Missing => ctx.send_error(session, 404, true, None).await,
        Found::Forbidden => ctx.send_error(session, 403, true, None).await,
    }
}

/// `301` to the directory's path with its `/` (and the query), absolute as nginx writes it:
/// the request's host, and the port the connection came in on unless it is the scheme's own.
async fn slash_redirect(
    session: &mut Session,
    ctx: &mut Ctx,
    site: &Site<'_>,
    uri: &str,
) -> Result<()> {
    let req = session.req_header();
    let scheme = if ctx.tls.is_some() { "https" } else { "http" };
    let mut location = match route_target(req).0 {
        Some(host) => {
            let host = crate::vars::uri::normalize_host(host);
            let port = local_addr(session)
                .map(|a| a.port())
                .filter(|p| *p != if ctx.tls.is_some() { 443 } else { 80 });
            match port {
                Some(p) => format!("{scheme}://{host}:{p}{uri}/"),
                None => format!("{scheme}://{host}{uri}/"),
            }
        }
        None => format!("{uri}/"),
    };
    if let Some(q) = req.uri.query() {
        location.push('?');
        location.push_str(q);
    }
    let location = crate::vars::header_value(&location);
    let expires = site.files.expires;
    let ctx = &*ctx;
    super::respond::send_error(session, 301, true, ctx.error_page(301), |s, r| {
        r.insert_header(header::LOCATION, location)?;
        add_expires(r, expires)?;
        ctx.decorate(s, r)
    })
    .await
}

/// A directory asked for with its `/`: its first index file, else its listing with
/// `autoindex`, else `403`.
async fn directory(
    session: &mut Session,
    ctx: &mut Ctx,
    site: &Site<'_>,
    dir: &Path,
    uri: &str,
) -> Result<()> {
    if !get_or_head(session) {
        return not_allowed(session, ctx).await;
    }
    for name in &site.files.index {
        match site.open_path(dir.join(name)) {
            Found::File(file) => return send_file(session, ctx, site, file).await,
            Found::Forbidden => return ctx.send_error(session, 403, true, None).await,
            Found::Dir(_) | Found::Missing => {}
        }
    }
    if !site.files.autoindex {
        return ctx.send_error(session, 403, true, None).await;
    }
    let Ok(html) = files::listing::render(dir, uri) else {
        return ctx.send_error(session, 403, true, None).await;
    };
    let ctx = &*ctx;
    let headers = vec![(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    )];
    super::respond::send_answer(session, 200, headers, Bytes::from(html), |s, r| {
        ctx.decorate(s, r)
    })
    .await
}

fn get_or_head(session: &Session) -> bool {
    let m = &session.req_header().method;
    m == Method::GET || m == Method::HEAD
}

async fn not_allowed(session: &mut Session, ctx: &mut Ctx) -> Result<()> {
    let allow = (header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    ctx.send_error(session, 405, true, Some(allow)).await
}

/// Send `file` (or its precompressed twin): `200`, `206`, `304`, `412` or `416`.
async fn send_file(
    session: &mut Session,
    ctx: &mut Ctx,
    site: &Site<'_>,
    file: Arc<Opened>,
) -> Result<()> {
    if !get_or_head(session) {
        return not_allowed(session, ctx).await;
    }
    let files = site.files;
    let content_type = files::content_type(&file.path);
    let mut file = file;
    let mut encoding = None;
    if files.precompressed {
        let accept = session
            .req_header()
            .headers
            .get(header::ACCEPT_ENCODING)
            .map(HeaderValue::as_bytes);
        for (name, suffix) in files::accepted_encodings(accept) {
            if let Found::File(twin) = site.open_path(files::with_suffix(&file.path, suffix)) {
                encoding = Some(name);
                file = twin;
                break;
            }
        }
    }
    let etag = file.etag();
    let etag = etag.as_str();
    // Without the case map: field names go out in their usual case (`Content-Type`) anyway.
    let mut resp = ResponseHeader::build_no_case(200, Some(10))?;
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    resp.insert_header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))?;
    resp.insert_header(header::CONTENT_LENGTH, HeaderValue::from(file.len))?;
    resp.insert_header(header::LAST_MODIFIED, http_date(file.modified))?;
    resp.insert_header(header::ETAG, etag_value)?;
    if let Some(encoding) = encoding {
        resp.insert_header(header::CONTENT_ENCODING, encoding)?;
    }
    if files.precompressed {
        resp.insert_header(header::VARY, "Accept-Encoding")?;
    }

    // On-the-fly compression (`compress`) for a file without a twin: no ranges then.
    let mut compressor = None;
    if site.compress && encoding.is_none() && file.len >= policy::MIN_COMPRESS {
        let mut c = policy::compression_ctx(session.req_header());
        let mut compressed = resp.clone();
        c.response_header_filter(&mut compressed, false);
        if compressed.headers.contains_key(header::CONTENT_ENCODING) {
            resp = compressed;
            compressor = Some(c);
        }
    }
    let answer = cond::decide(
        &session.req_header().headers,
        etag,
        file.modified,
        file.len,
        compressor.is_none(),
    );
    let (start, end) = match answer {
        Answer::Full => (0, file.len),
        Answer::Partial { start, end } => {
            resp.set_status(206)?;
            resp.insert_header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", file.len),
            )?;
            resp.insert_header(header::CONTENT_LENGTH, end + 1 - start)?;
            (start, end + 1)
        }
        Answer::NotModified => {
            resp.set_status(304)?;
            for name in [
                header::CONTENT_LENGTH,
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
            ] {
                resp.remove_header(&name);
            }
            resp.remove_header(&header::TRANSFER_ENCODING);
            (0, 0)
        }
        Answer::PreconditionFailed => return ctx.send_error(session, 412, true, None).await,
        Answer::Unsatisfiable => {
            let range = HeaderValue::from_str(&format!("bytes */{}", file.len))
                .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"));
            return ctx
                .send_error(session, 416, true, Some((header::CONTENT_RANGE, range)))
                .await;
        }
    };
    if compressor.is_none() {
        resp.insert_header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"))?;
    }
    add_expires(&mut resp, files.expires)?;
    ctx.decorate(session, &mut resp)?;
    let head_only = session.req_header().method == Method::HEAD;
    let no_body = head_only || start == end && compressor.is_none();
    session
        .write_response_header(Box::new(resp), no_body)
        .await?;
    if no_body {
        return Ok(());
    }
    send_body(session, &file, start, end, compressor).await
}

/// Bytes `start..end` of `file`, one chunk at a time; each is checked against the file as it
/// was opened, so a file rewritten while it is sent ends the connection rather than mixing two
/// versions under one `Content-Length`. An answer of one piece is read right after the open
/// and only needs to be read whole.
async fn send_body(
    session: &mut Session,
    file: &Opened,
    start: u64,
    end: u64,
    mut compressor: Option<pingora::protocols::http::compression::ResponseCompressionCtx>,
) -> Result<()> {
    let mut pos = start;
    loop {
        let n = (end - pos).min(CHUNK as u64) as usize;
        let mut buf = BytesMut::with_capacity(n);
        let read = read_exact_at(&file.file, &mut buf, n, pos);
        // One read right after the open needs only to be whole (a truncated file reads
        // short); an answer of several pieces is checked piece by piece.
        let single = pos == start && n as u64 == end - start;
        let same = read.is_ok() && (single || file.unchanged().unwrap_or(false));
        if !same {
            tracing::warn!("{} changed while it was sent", file.path.display());
            return Error::e_explain(
                ErrorType::InternalError,
                "the file changed while it was sent",
            );
        }
        pos += n as u64;
        let last = pos >= end;
        let mut chunk = buf.freeze();
        if let Some(c) = compressor.as_mut() {
            chunk = c
                .response_body_filter(Some(&chunk), last)
                .unwrap_or_default();
        }
        session.write_response_body(Some(chunk), last).await?;
        if last {
            return Ok(());
        }
    }
}

/// Read `n` bytes at `pos` into `buf`'s spare room (which is not zeroed first: a 1 MiB
/// answer would otherwise clear 1 MiB it is about to overwrite). A file that ends early is an
/// error.
fn read_exact_at(
    file: &std::fs::File,
    buf: &mut BytesMut,
    n: usize,
    pos: u64,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    buf.reserve(n);
    let mut filled = 0;
    while filled < n {
        let offset = libc::off_t::try_from(pos + filled as u64)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: the spare room holds at least `n` bytes, of which `filled` are written: the
        // `n - filled` bytes from `filled` are writable.
        let r = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.spare_capacity_mut()[filled..].as_mut_ptr().cast(),
                n - filled,
                offset,
            )
        };
        match r {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            r if r < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            r => filled += r as usize,
        }
    }
    // SAFETY: pread wrote all `n` bytes.
    unsafe { buf.set_len(n) };
    Ok(())
}

/// An HTTP date, formatted on the stack.
fn http_date(t: SystemTime) -> HeaderValue {
    use std::io::Write as _;
    let mut buf = [0u8; 29];
    let mut w = &mut buf[..];
    match write!(w, "{}", httpdate::HttpDate::from(t)) {
        Ok(()) => HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("")),
        Err(_) => HeaderValue::from_static(""),
    }
}

/// `expires`: `Cache-Control` and `Expires` (SPEC §12: on 200, 204, 206, 301, 302, 304, 307
/// and 308 answers).
fn add_expires(resp: &mut ResponseHeader, expires: Option<Expires>) -> Result<()> {
    let Some(expires) = expires else {
        return Ok(());
    };
    if !matches!(
        resp.status.as_u16(),
        200 | 204 | 206 | 301 | 302 | 304 | 307 | 308
    ) {
        return Ok(());
    }
    let (cache_control, at) = match expires {
        Expires::For(d) => (
            format!("max-age={}", d.as_secs()),
            httpdate::fmt_http_date(SystemTime::now() + d),
        ),
        Expires::Max => (
            "max-age=315360000".to_string(),
            "Thu, 31 Dec 2037 23:55:55 GMT".to_string(),
        ),
        Expires::Epoch => (
            "no-cache".to_string(),
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1)),
        ),
    };
    resp.insert_header(header::CACHE_CONTROL, cache_control)?;
    resp.insert_header(header::EXPIRES, at)?;
    Ok(())
}
