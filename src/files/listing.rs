//! `autoindex`: a directory's HTML listing, laid out as nginx's (so a page that scraped
//! nginx's listing reads this one): directories first, then files, each in byte order of
//! their names; names escaped for HTML and percent-encoded in links, longer than 50 characters
//! cut with `..>`; entries starting with `.` left out; sizes in bytes, times in UTC.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use std::fmt::Write;
use std::path::Path;

/// The width of the name column (nginx's).
const NAME_WIDTH: usize = 50;

/// What a link's path segment must encode.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'\'')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b';')
    .add(b'&')
    .add(b'+')
    .add(b'=');

/// The listing of `dir`, shown for the request path `uri`. Entries that cannot be read are
/// left out; so is anything not valid UTF-8 in its name (it could not be linked to).
pub fn render(dir: &Path, uri: &str) -> std::io::Result<String> {
    let mut entries: Vec<(String, bool, u64, Option<std::time::SystemTime>)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Follows links, as nginx's listing does (what a link names is what a click gets).
        let meta = std::fs::metadata(entry.path()).ok();
        let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
        let len = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta.and_then(|m| m.modified().ok());
        entries.push((name, is_dir, len, modified));
    }
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let title = escape(uri);
    let mut out = format!(
        "<html>\r\n<head><title>Index of {title}</title></head>\r\n<body>\r\n<h1>Index of {title}</h1><hr><pre><a href=\"../\">../</a>\r\n"
    );
    for (name, is_dir, len, modified) in entries {
        let slash = if is_dir { "/" } else { "" };
        let href = utf8_percent_encode(&name, SEGMENT);
        let date = modified.map_or_else(String::new, |m| {
            chrono::DateTime::<chrono::Utc>::from(m)
                .format("%d-%b-%Y %H:%M")
                .to_string()
        });
        let size = if is_dir {
            "-".to_string()
        } else {
            len.to_string()
        };
        let full = format!("{name}{slash}");
        let count = full.chars().count();
        let shown = if count > NAME_WIDTH {
            let cut: String = full.chars().take(NAME_WIDTH - 3).collect();
            format!("{}..&gt;", escape(&cut))
        } else {
            escape(&full)
        };
        let pad = NAME_WIDTH.saturating_sub(count);
        let _ = write!(
            out,
            "<a href=\"{href}{slash}\">{shown}</a>{:pad$} {date} {size:>19}\r\n",
            ""
        );
    }
    out.push_str("</pre><hr></body>\r\n</html>\r\n");
    Ok(out)
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_linked_encoded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("<b>&\"x\".txt"), b"12345").unwrap();
        std::fs::write(dir.path().join("a b?.css"), b"").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let html = render(dir.path(), "/files/<x>/").unwrap();
        assert!(
            html.contains("<title>Index of /files/&lt;x&gt;/</title>"),
            "{html}"
        );
        let long = "n".repeat(60);
        std::fs::write(dir.path().join(&long), b"").unwrap();
        let html = render(dir.path(), "/").unwrap();
        assert!(
            html.contains(&format!(">{}..&gt;</a> ", "n".repeat(47))),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"%3Cb%3E%26%22x%22.txt\">&lt;b&gt;&amp;&quot;x&quot;.txt</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"a%20b%3F.css\">a b?.css</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"sub/\">sub/</a>"), "{html}");
        assert!(!html.contains("hidden"), "{html}");
        let a = html.find("a%20b").unwrap();
        let b = html.find("%3Cb").unwrap();
        let s = html.find("sub/").unwrap();
        assert!(s < b && b < a, "directories first, then by name");
    }
}
