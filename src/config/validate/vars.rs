//! Variables, maps and error pages (SPEC §11): templates compiled with their names checked,
//! `maps` (no map may read itself, directly or through another), and `error_pages` read from
//! disk at load.

use super::Checker;
use crate::config::file::{FileConfig, FileMap, Ordered};
use crate::config::yaml::Seg;
use crate::config::{ErrorPage, ErrorPages};
use crate::vars::map::Key;
use crate::vars::{Map, Scope, Template};
use std::sync::Arc;

/// An error page larger than this is refused: it is held in memory and sent whole.
const MAX_ERROR_PAGE: u64 = 1024 * 1024;

/// Compile `text` at `path`; an error is recorded there.
pub(super) fn template(
    c: &mut Checker<'_>,
    text: &str,
    path: &[Seg<'_>],
    scope: Scope<'_>,
) -> Option<Template> {
    Template::compile(text, scope)
        .map_err(|e| c.err(path, e))
        .ok()
}

/// The names under `maps`, in order.
pub(super) fn map_names(file: &FileConfig) -> Vec<String> {
    file.maps
        .iter()
        .flat_map(|m| &m.0)
        .map(|(n, _)| n.clone())
        .collect()
}

/// `maps`, compiled. A map that fails is left out (its error recorded).
pub(super) fn maps(c: &mut Checker<'_>, file: &FileConfig, names: &[String]) -> Vec<Map> {
    let mut out = Vec::new();
    for (name, m) in file.maps.iter().flat_map(|m| &m.0) {
        let at = [Seg::Key("maps"), Seg::Key(name)];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            c.err(
                &at,
                format!("`{name}`: a map name is letters, digits and _"),
            );
            continue;
        }
        if Template::compile(&format!("${name}"), Scope::default()).is_ok() {
            c.err(
                &at,
                format!("`{name}` is the name of a built-in variable: choose another"),
            );
            continue;
        }
        if let Some(map) = one_map(c, name, m, &at, names) {
            out.push(map);
        }
    }
    if out.len() == names.len() {
        // Every map compiled: one that reads itself would never finish.
        for (i, name) in names.iter().enumerate() {
            if reaches(&out, i, i, &mut vec![false; out.len()]) {
                c.err(
                    &[Seg::Key("maps"), Seg::Key(name), Seg::Key("from")],
                    format!("`${name}` reads itself (through `from`)"),
                );
                return Vec::new();
            }
        }
    }
    out
}

/// Whether map `from`'s template reads `target`, directly or through other maps.
fn reaches(maps: &[Map], from: usize, target: usize, seen: &mut Vec<bool>) -> bool {
    for next in maps[from].from().maps() {
        if next == target {
            return true;
        }
        if !seen[next] {
            seen[next] = true;
            if reaches(maps, next, target, seen) {
                return true;
            }
        }
    }
    false
}

fn one_map(
    c: &mut Checker<'_>,
    name: &str,
    m: &FileMap,
    at: &[Seg<'_>],
    names: &[String],
) -> Option<Map> {
    let errors_before = c.issues.len();
    let key = |k: &'static str| [at, &[Seg::Key(k)]].concat();
    let from = match &m.from {
        None => {
            c.err(
                at,
                "`from` is required: the value looked up, e.g. `$http_upgrade`",
            );
            None
        }
        Some(t) => template(
            c,
            t,
            &key("from"),
            Scope {
                maps: names,
                ..Scope::default()
            },
        ),
    };
    let mut entries = Vec::new();
    for (k, v) in m.values.iter().flat_map(|v| &v.0) {
        let p = [&key("values")[..], &[Seg::Key(k)]].concat();
        let parsed = match k.strip_prefix('~') {
            Some(re) => {
                let (re, ci) = re.strip_prefix('*').map_or((re, false), |re| (re, true));
                match super::location::compile(re, ci) {
                    Ok(re) => Key::Regex(re),
                    Err(e) => {
                        c.err(&p, e);
                        continue;
                    }
                }
            }
            None => Key::Exact(k.strip_prefix('\\').unwrap_or(k).to_string()),
        };
        entries.push((parsed, v.clone()));
    }
    if c.issues.len() > errors_before {
        return None;
    }
    Some(Map::new(
        name.to_string(),
        from?,
        entries,
        m.default.clone().unwrap_or_default(),
    ))
}

/// `error_pages` at `base` (top level or a route's); `None` when absent.
pub(super) fn error_pages(
    c: &mut Checker<'_>,
    pages: &Option<Ordered<String>>,
    base: &[Seg<'_>],
) -> Option<Arc<ErrorPages>> {
    let pages = pages.as_ref()?;
    let mut out: Vec<(u16, Arc<ErrorPage>)> = Vec::new();
    for (statuses, file) in &pages.0 {
        let p = [base, &[Seg::Key(statuses)]].concat();
        let mut codes = Vec::new();
        for word in statuses.split([' ', ',']).filter(|w| !w.is_empty()) {
            match word.parse::<u16>() {
                Ok(s) if (400..=599).contains(&s) => codes.push(s),
                _ => c.err(
                    &p,
                    format!(
                        "`{word}` is not an error status (400 to 599); write `\"502 503 504\"`"
                    ),
                ),
            }
        }
        if codes.is_empty() {
            c.err(&p, "name one or more statuses, e.g. `\"502 503 504\"`");
            continue;
        }
        let Some(page) = read_page(c, file, &p) else {
            continue;
        };
        let page = Arc::new(page);
        for code in codes {
            if out.iter().any(|(s, _)| *s == code) {
                c.err(&p, format!("{code} has a page already"));
            } else {
                out.push((code, Arc::clone(&page)));
            }
        }
    }
    Some(Arc::new(ErrorPages(out)))
}

fn read_page(c: &mut Checker<'_>, file: &str, at: &[Seg<'_>]) -> Option<ErrorPage> {
    let path = c.file(file);
    if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
        c.err(at, format!("{} is not a regular file", path.display()));
        return None;
    }
    let read = std::fs::File::open(&path).and_then(|f| {
        use std::io::Read;
        let mut body = Vec::new();
        f.take(MAX_ERROR_PAGE + 1).read_to_end(&mut body)?;
        Ok(body)
    });
    match read {
        Ok(body) if body.len() as u64 > MAX_ERROR_PAGE => {
            c.err(at, format!("{}: larger than 1 MiB", path.display()));
            None
        }
        Ok(body) => {
            let mime = mime_guess::from_path(&path).first_or_text_plain();
            let content_type =
                if mime.type_() == mime_guess::mime::TEXT && mime.get_param("charset").is_none() {
                    format!("{mime}; charset=utf-8")
                } else {
                    mime.to_string()
                };
            Some(ErrorPage {
                content_type: http::HeaderValue::from_str(&content_type)
                    .unwrap_or_else(|_| http::HeaderValue::from_static("text/html")),
                path,
                body: bytes::Bytes::from(body),
            })
        }
        Err(e) => {
            c.err(at, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}
