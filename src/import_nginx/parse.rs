//! A parser for nginx configuration files: directives, blocks, quoting, comments and `include`
//! (SPEC §10, `switchyard import-nginx`).
//!
//! Written by hand: the syntax is small (words, quoted strings, `;`, `{`, `}`, `#` comments)
//! and no maintained Rust crate parses it with positions and `include`. Every directive keeps
//! its file and line, so what cannot be translated is reported as `FILE:LINE: directive: why`.
//! `include` is expanded where it stands, relative to the including file's directory; `*` and
//! `?` in its last path component match file names (nginx's common `conf.d/*.conf`), in name
//! order. `mime.types`-style includes that do not exist are errors, as in nginx.

use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One directive: `name arg…;` or `name arg… { … }`.
#[derive(Debug, Clone)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub file: Rc<PathBuf>,
    pub line: usize,
    /// The block's directives, for `name … { … }`.
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// `FILE:LINE` of the directive.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// A parse error: `FILE:LINE: what`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Files at most this large are read (an nginx config is a few KiB).
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// `include` depth at most (a file including itself would never end).
const MAX_DEPTH: usize = 16;

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Semi,
    Open,
    Close,
}

fn tokens(text: &str, file: &Path) -> Result<Vec<(Token, usize)>, ParseError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            ';' => {
                out.push((Token::Semi, line));
                chars.next();
            }
            '{' => {
                out.push((Token::Open, line));
                chars.next();
            }
            '}' => {
                out.push((Token::Close, line));
                chars.next();
            }
            '"' | '\'' => {
                let quote = c;
                let start = line;
                chars.next();
                let mut word = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(ParseError(format!(
                                "{}:{start}: a quoted string is not closed",
                                file.display()
                            )));
                        }
                        Some('\\') => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some(other) => {
                                if other != quote && other != '\\' {
                                    word.push('\\');
                                }
                                word.push(other);
                            }
                            None => {}
                        },
                        Some(ch) if ch == quote => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            word.push(ch);
                        }
                    }
                }
                out.push((Token::Word(word), start));
            }
            _ => {
                let mut word = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, ';' | '{' | '}' | '"' | '\'') {
                        // `${var}` keeps its braces.
                        if ch == '{' && word.ends_with('$') {
                            word.push(ch);
                            chars.next();
                            continue;
                        }
                        if ch == '}' && word.contains("${") && !word.ends_with('}') {
                            word.push(ch);
                            chars.next();
                            continue;
                        }
                        break;
                    }
                    if ch == '#' && word.is_empty() {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                out.push((Token::Word(word), line));
            }
        }
    }
    Ok(out)
}

/// Parse the nginx config at `path`, with its includes.
pub fn parse_file(path: &Path) -> Result<Vec<Directive>, ParseError> {
    parse_at(path, 0)
}

fn parse_at(path: &Path, depth: usize) -> Result<Vec<Directive>, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError(format!(
            "{}: includes nested more than {MAX_DEPTH} deep (a loop?)",
            path.display()
        )));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| ParseError(format!("{}: cannot read: {e}", path.display())))?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err(ParseError(format!(
            "{}: not a regular file of at most 4 MiB",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ParseError(format!("{}: cannot read: {e}", path.display())))?;
    let file = Rc::new(path.to_path_buf());
    let toks = tokens(&text, path)?;
    let mut pos = 0;
    let out = block(&toks, &mut pos, &file, depth, false)?;
    Ok(out)
}

fn block(
    toks: &[(Token, usize)],
    pos: &mut usize,
    file: &Rc<PathBuf>,
    depth: usize,
    nested: bool,
) -> Result<Vec<Directive>, ParseError> {
    let mut out = Vec::new();
    loop {
        let Some((tok, line)) = toks.get(*pos) else {
            if nested {
                return Err(ParseError(format!(
                    "{}: a block is not closed (missing `}}`)",
                    file.display()
                )));
            }
            return Ok(out);
        };
        let line = *line;
        match tok {
            Token::Close if nested => {
                *pos += 1;
                return Ok(out);
            }
            Token::Close => {
                return Err(ParseError(format!(
                    "{}:{line}: unexpected `}}`",
                    file.display()
                )));
            }
            Token::Semi | Token::Open => {
                return Err(ParseError(format!(
                    "{}:{line}: a directive name was expected",
                    file.display()
                )));
            }
            Token::Word(name) => {
                *pos += 1;
                let mut args = Vec::new();
                loop {
                    match toks.get(*pos) {
                        Some((Token::Word(w), _)) => {
                            args.push(w.clone());
                            *pos += 1;
                        }
                        Some((Token::Semi, _)) => {
                            *pos += 1;
                            if name == "include" {
                                out.extend(include(file, &args, line, depth)?.unwrap_or_else(
                                    |missing| {
                                        // Kept as an `include` directive whose second argument
                                        // says why: the importer reports it and goes on.
                                        vec![Directive {
                                            name: name.clone(),
                                            args: vec![args.join(" "), missing],
                                            file: Rc::clone(file),
                                            line,
                                            block: None,
                                        }]
                                    },
                                ));
                            } else {
                                out.push(Directive {
                                    name: name.clone(),
                                    args,
                                    file: Rc::clone(file),
                                    line,
                                    block: None,
                                });
                            }
                            break;
                        }
                        Some((Token::Open, _)) => {
                            *pos += 1;
                            let inner = block(toks, pos, file, depth, true)?;
                            out.push(Directive {
                                name: name.clone(),
                                args,
                                file: Rc::clone(file),
                                line,
                                block: Some(inner),
                            });
                            break;
                        }
                        Some((Token::Close, _)) | None => {
                            return Err(ParseError(format!(
                                "{}:{line}: `{name}` is not ended by `;`",
                                file.display()
                            )));
                        }
                    }
                }
            }
        }
    }
}

/// The directives of an `include`. A file that does not exist here (certbot's
/// `options-ssl-nginx.conf` where the import runs, say) is `Ok(Err(why))`: the importer reports
/// it and translates the rest. A broken file that exists is an error.
fn include(
    from: &Path,
    args: &[String],
    line: usize,
    depth: usize,
) -> Result<Result<Vec<Directive>, String>, ParseError> {
    let [pattern] = args else {
        return Err(ParseError(format!(
            "{}:{line}: `include` takes one file or pattern",
            from.display()
        )));
    };
    let dir = from.parent().unwrap_or(Path::new("."));
    let full = if Path::new(pattern).is_relative() {
        dir.join(pattern)
    } else {
        PathBuf::from(pattern)
    };
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let files: Vec<PathBuf> = if name.contains(['*', '?']) {
        let parent = full.parent().unwrap_or(Path::new("."));
        let entries = match std::fs::read_dir(parent) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(format!("cannot read {}: {e}", parent.display())));
            }
            r => r,
        };
        let mut found: Vec<PathBuf> = entries
            .map_err(|e| ParseError(format!("{}:{line}: include {pattern}: {e}", from.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .is_some_and(|n| wildcard(&name, &n.to_string_lossy()))
            })
            .collect();
        found.sort();
        found
    } else {
        vec![full]
    };
    let mut out = Vec::new();
    for f in files {
        if let Err(e) = std::fs::metadata(&f)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Ok(Err(format!("cannot read {}: {e}", f.display())));
        }
        out.extend(parse_at(&f, depth + 1)?);
    }
    Ok(Ok(out))
}

/// `*` (any run) and `?` (one character) matching of a file name.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

#[cfg(test)]
mod tests;
