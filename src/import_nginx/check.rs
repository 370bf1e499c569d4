//! What is done to a translation before it is written: pools left without servers are dropped
//! with their routes, and the loader's own validation is run on the YAML.

use super::*;

/// A pool left without servers (all of them Unix sockets, or `down`) cannot be written: it is
/// left out, and so are the routes to it (each reported).
pub(super) fn drop_empty_pools(out: &mut Out) {
    let empty: Vec<String> = out
        .pools
        .iter()
        .filter(|(_, p)| p.servers.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    if empty.is_empty() {
        return;
    }
    out.pools.retain(|(n, _)| !empty.contains(n));
    let mut dropped = Vec::new();
    out.routes.retain(|r| {
        let gone = r.upstream.as_ref().is_some_and(|u| empty.contains(u));
        if gone {
            dropped.push(r.origin.clone());
        }
        !gone
    });
    for origin in dropped {
        let (directive, at) = origin.rsplit_once(" (").unwrap_or((&origin, ""));
        out.notes.push(Note {
            at: at.trim_end_matches(')').to_string(),
            directive: directive.to_string(),
            why: "left out: its upstream has no server switchyard can reach".into(),
            skipped: true,
        });
    }
}

/// Run the loader's own validation on the translation. Files it names that are not on this
/// machine (certificates, error pages) become notes: the config is checked where it will
/// run. Names in server addresses are not resolved here. Anything else `check` would refuse
/// is returned: the importer must never write such a config.
pub(super) fn self_check(yaml: &str, nginx: &Path, notes: &mut Vec<Note>) -> Vec<String> {
    let any_name = |text: &str| -> Result<std::net::SocketAddr, String> {
        crate::config::units::literal_addr(text).or_else(|_| {
            let port = text.trim().rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            match port {
                Some(Ok(port)) => Ok(std::net::SocketAddr::from(([192, 0, 2, 1], port))),
                _ => Err(format!("`{text}` is not host:port")),
            }
        })
    };
    let source = nginx.with_extension("yaml");
    match crate::config::load_str_with(yaml, "the translation", source, &any_name) {
        Ok(_) => Vec::new(),
        Err(errors) => {
            let mut left = Vec::new();
            for e in errors.0 {
                if e.message.starts_with("cannot read") {
                    notes.push(Note {
                        at: e.path.clone(),
                        directive: "file".into(),
                        why: format!("{} (it must exist where switchyard runs)", e.message),
                        skipped: false,
                    });
                } else {
                    left.push(e.to_string());
                }
            }
            left
        }
    }
}
