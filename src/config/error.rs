//! Config errors: each one names the file, the line and column, the key path and what is wrong.

use super::yaml::Mark;
use std::fmt;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the user named it.
    pub file: String,
    /// Where in the file; `None` for problems with the file as a whole (unreadable, say).
    pub mark: Option<Mark>,
    /// Key path such as `upstreams.app.servers[1].weight`; empty at the top level.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mark {
            Some(m) => write!(f, "{}:{}:{}: ", self.file, m.line, m.col)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one load, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A problem before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub mark: Mark,
    pub path: String,
    pub message: String,
}

/// Collects issues; the config layers report into it and never stop at the first problem.
#[derive(Debug, Default)]
pub struct Issues(Vec<Issue>);

impl Issues {
    pub fn push(&mut self, mark: Mark, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            mark,
            path: shorten(path.into()),
            message: shorten(message.into()),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Attach the file name; sorted by position so the output reads top to bottom.
    pub fn into_errors(mut self, file: &str) -> ConfigErrors {
        self.0
            .sort_by_key(|i| (i.mark.line, i.mark.col, i.path.clone()));
        self.0.dedup();
        ConfigErrors(
            self.0
                .into_iter()
                .map(|i| ConfigError {
                    file: file.to_string(),
                    mark: Some(i.mark),
                    path: i.path,
                    message: i.message,
                })
                .collect(),
        )
    }
}

/// The most characters of a value quoted in an error message: a bad value is quoted, not
/// echoed (a 10 MB `addr` must not come back as a 10 MB answer and log line).
pub const MAX_QUOTE: usize = 100;

/// The longest error message kept, whatever it contains.
const MAX_MESSAGE: usize = 1000;

/// Cut every `` `quoted` `` span longer than [`MAX_QUOTE`] characters (noting its full size),
/// and the whole text at [`MAX_MESSAGE`] characters.
pub fn shorten(text: String) -> String {
    if text.len() <= MAX_QUOTE {
        return text;
    }
    let mut out = String::with_capacity(MAX_MESSAGE.min(text.len()));
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        match part.char_indices().nth(MAX_QUOTE) {
            // Odd parts are inside backticks.
            Some((cut, _)) if i % 2 == 1 => {
                out.push_str(&part[..cut]);
                out.push_str(&format!("… ({} bytes)", part.len()));
            }
            _ => out.push_str(part),
        }
    }
    match out.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

/// The closest candidate to a misspelt name, if one is close enough to be a plausible typo;
/// on a tie, the one listed first.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given_l = given.to_ascii_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&given_l, &c.to_ascii_lowercase());
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match suggest(given, candidates) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["listen", "admin", "threads", "upstreams", "routes"];
        assert_eq!(suggest("lisen", keys), Some("listen"));
        assert_eq!(suggest("upstream", keys), Some("upstreams"));
        assert_eq!(suggest("Threads", keys), Some("threads"));
        assert_eq!(suggest("zzzz", keys), None);
    }

    #[test]
    fn display_has_file_line_col_and_path() {
        let mut issues = Issues::default();
        issues.push(Mark { line: 3, col: 5 }, "admin.lisen", "unknown key");
        let errs = issues.into_errors("conf.yaml");
        assert_eq!(errs.to_string(), "conf.yaml:3:5: admin.lisen: unknown key");
    }

    #[test]
    fn long_quoted_values_are_cut() {
        let long = "x".repeat(5000);
        let msg = shorten(format!("`{long}` is not host:port; see `addr`"));
        assert!(
            msg.starts_with(&format!("`{}… (5000 bytes)`", "x".repeat(MAX_QUOTE))),
            "{msg}"
        );
        assert!(msg.ends_with("is not host:port; see `addr`"), "{msg}");
        assert_eq!(shorten("short `one`".into()), "short `one`");
        let unquoted = shorten("y".repeat(5000));
        assert_eq!(unquoted.chars().count(), MAX_MESSAGE + 1);
        // Multi-byte characters are cut on a character boundary.
        let wide = shorten(format!("`{}`", "é".repeat(300)));
        assert!(wide.contains("… (600 bytes)"), "{wide}");
    }
}
