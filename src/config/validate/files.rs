//! A route's `static` block (SPEC §12): its directory, index names, `try_files` and
//! `expires`.

use super::Checker;
use super::tls::resolve_file;
use super::vars::template;
use crate::config::defaults;
use crate::config::error::did_you_mean;
use crate::config::file_static::FileStatic;
use crate::config::units::parse_duration;
use crate::config::yaml::Seg;
use crate::config::{Expires, Fallback, PathMatch, StaticFiles, TryFile};
use crate::files::cache::OpenFiles;
use crate::vars::Scope;
use std::time::Duration;

/// `static`, checked. `upstream` is the route's pool (or map) when it has one; the result's
/// second part is the pool a final `@POOL` names.
pub(super) fn static_files(
    c: &mut Checker<'_>,
    s: &FileStatic,
    base: &[Seg<'_>],
    path: &PathMatch,
    upstream: Option<&str>,
    pools: &[&str],
    scope: Scope<'_>,
) -> Option<(StaticFiles, Option<usize>)> {
    let at = |k: &'static str| [base, &[Seg::Key(k)]].concat();
    let errors_before = c.issues.len();
    let (dir, alias) = match (&s.root, &s.alias) {
        (Some(_), Some(_)) => {
            c.err(
                &at("alias"),
                "`root` or `alias`, not both: root + path, or alias + the path after the prefix",
            );
            return None;
        }
        (None, None) => {
            c.err(
                base,
                "`root` (or `alias`) is required: the directory to serve",
            );
            return None;
        }
        (Some(root), None) => (root, false),
        (None, Some(alias)) => (alias, true),
    };
    let key = if alias { "alias" } else { "root" };
    if dir.trim().is_empty() || dir.contains('\0') {
        c.err(&at(key), "a directory is required here");
        return None;
    }
    if alias && matches!(path, PathMatch::Regex(_)) {
        c.err(
            &at("alias"),
            "a `regex` route has no prefix for `alias` to replace; use `root`",
        );
    }
    let dir = resolve_file(&c.source, dir.trim());
    let real_dir = match std::fs::metadata(&dir) {
        // `location = /favicon.ico { alias /srv/favicon.ico; }`: an exact route's alias is
        // the file itself.
        Ok(m) if !(m.is_dir() || alias && matches!(path, PathMatch::Exact(_))) => {
            c.err(&at(key), format!("{} is not a directory", dir.display()));
            None
        }
        Ok(_) => std::fs::canonicalize(&dir).ok(),
        Err(e) => {
            c.warn(
                &at(key),
                format!(
                    "{}: {e}; its requests are answered 404 until it exists",
                    dir.display()
                ),
            );
            None
        }
    };

    let index = match &s.index {
        None => vec!["index.html".to_string()],
        Some(names) => {
            for (j, n) in names.iter().enumerate() {
                if n.is_empty() || n == "." || n == ".." || n.contains(['/', '\\', '\0']) {
                    c.err(
                        &[&at("index")[..], &[Seg::Index(j)]].concat(),
                        format!("`{n}`: an index is a file name, without `/`"),
                    );
                }
            }
            names.clone()
        }
    };

    let mut fallback_pool = None;
    let (try_files, fallback) = match &s.try_files {
        None if upstream.is_some() => (vec![TryFile::Uri], Fallback::Upstream),
        None => (Vec::new(), Fallback::Serve),
        Some(list) => {
            let tf = at("try_files");
            let entry_at = |j: usize| [&tf[..], &[Seg::Index(j)]].concat();
            let last = list.last().map(|l| l.trim());
            let (fallback, tries) = match last {
                None => {
                    c.err(
                        &tf,
                        "name the files to try: `[\"$uri\", \"$uri/\", \"/index.html\"]`",
                    );
                    return None;
                }
                Some(code) if code.starts_with('=') && upstream.is_some() => {
                    c.err(
                        &entry_at(list.len() - 1),
                        format!("`{code}` would leave the route's `upstream` unused: with an upstream, it is the fallback"),
                    );
                    return None;
                }
                Some(code) if code.starts_with('=') => {
                    let status = match code[1..].parse::<u16>() {
                        Ok(s) if (400..=599).contains(&s) => s,
                        _ => {
                            c.err(
                                &entry_at(list.len() - 1),
                                format!("`{code}`: `=` is followed by an error status, e.g. =404"),
                            );
                            404
                        }
                    };
                    (Fallback::Status(status), &list[..list.len() - 1])
                }
                Some(named) if named.starts_with('@') => {
                    let name = &named[1..];
                    match pools.iter().position(|p| *p == name) {
                        Some(i) if upstream.is_none_or(|u| u == name) => {
                            fallback_pool = Some(i);
                        }
                        Some(_) => c.err(
                            &entry_at(list.len() - 1),
                            format!(
                                "`{named}` is not the route's upstream `{}`: a route falls back to its own",
                                upstream.unwrap_or_default()
                            ),
                        ),
                        None => c.err(
                            &entry_at(list.len() - 1),
                            format!(
                                "unknown upstream `{name}`{}",
                                did_you_mean(name, pools.iter().copied())
                            ),
                        ),
                    }
                    (Fallback::Upstream, &list[..list.len() - 1])
                }
                // With an upstream, every entry is a file to try and the upstream is the
                // fallback (`try_files $uri @app`).
                Some(_) if upstream.is_some() => (Fallback::Upstream, &list[..]),
                Some(_) if list.len() < 2 => {
                    c.err(
                        &tf,
                        "a file to try and a fallback are needed (a path, =CODE or @POOL), or an `upstream` on the route",
                    );
                    return None;
                }
                Some(target) => {
                    let j = list.len() - 1;
                    if !target.starts_with('/') && !target.starts_with('$') {
                        c.err(
                            &entry_at(j),
                            format!(
                                "`{target}`: the fallback is a path (/index.html), =CODE or @POOL"
                            ),
                        );
                        return None;
                    }
                    let t = template(c, target, &entry_at(j), scope)?;
                    (Fallback::Redirect(t), &list[..j])
                }
            };
            if tries.is_empty() && !matches!(fallback, Fallback::Upstream) {
                c.err(&tf, "name a file to try before the fallback, e.g. \"$uri\"");
            }
            let mut out = Vec::new();
            for (j, entry) in tries.iter().enumerate() {
                let entry = entry.trim();
                match entry {
                    "$uri" => out.push(TryFile::Uri),
                    "$uri/" => out.push(TryFile::UriDir),
                    e if e.starts_with('/') || e.starts_with('$') => {
                        if let Some(t) = template(c, e, &entry_at(j), scope) {
                            out.push(TryFile::Template(t));
                        }
                    }
                    e => c.err(
                        &entry_at(j),
                        format!(
                            "`{e}`: an entry is a path such as $uri, $uri/ or /maintenance.html"
                        ),
                    ),
                }
            }
            (out, fallback)
        }
    };

    let expires = s.expires.as_deref().map(str::trim).and_then(|e| match e {
        "off" => None,
        "max" => Some(Expires::Max),
        "epoch" => Some(Expires::Epoch),
        d => match parse_duration(d) {
            Ok(d) => Some(Expires::For(d)),
            Err(why) => {
                c.err(&at("expires"), format!("{why}; or `max`, `epoch` or `off`"));
                None
            }
        },
    });

    let open_for = match s.open_file_cache.as_deref().map(str::trim) {
        None => defaults::OPEN_FILE_CACHE,
        Some("off") => Duration::ZERO,
        Some(d) => parse_duration(d).unwrap_or_else(|why| {
            c.err(&at("open_file_cache"), format!("{why}; or `off`"));
            Duration::ZERO
        }),
    };

    (c.issues.len() == errors_before).then(|| {
        (
            StaticFiles {
                dir,
                alias,
                real_dir,
                index,
                try_files,
                fallback,
                expires,
                precompressed: s.precompressed.unwrap_or(false),
                autoindex: s.autoindex.unwrap_or(false),
                follow_symlinks: s.follow_symlinks.unwrap_or(false),
                open_files: OpenFiles::new(open_for, defaults::OPEN_FILES_MAX),
            },
            fallback_pool,
        )
    })
}
