//! YAML text -> a tree of [`Node`]s that remember their line and column.
//!
//! serde_yaml cannot say where a value came from once it has been deserialized, and it stops at
//! the first error. We want every error of a config file, each with `file:line:col`, so the file
//! is first parsed (by `saphyr-parser`, a maintained YAML 1.2 parser) into this small positioned
//! tree; [`super::de`] then deserializes the serde file structs from it, and
//! [`super::validate`] uses [`Node::locate`] to point at the value it rejects.
//!
//! Supported: block and flow mappings/sequences, every scalar style, comments, anchors and
//! aliases (bounded, so an alias bomb cannot exhaust memory). Not supported: merge keys (`<<`),
//! which are reported as unknown keys, and more than one document per file.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;
use std::fmt;

/// Upper bound on nodes built, aliases included: far above any real config (10 000 servers is
/// about 60 000 nodes), far below what would hurt (a document refused at this bound has cost a
/// few tens of MB at most; aliases are counted before they are copied).
const MAX_NODES: usize = 300_000;

/// A position in the config file, both 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// An empty value, `~` or `null`.
    Null,
    /// Any scalar, with its text exactly as written (quotes removed).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order; keys are scalars.
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub text: String,
    pub mark: Mark,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub mark: Mark,
}

/// One step of a path into the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl Node {
    pub fn null(mark: Mark) -> Node {
        Node {
            kind: NodeKind::Null,
            mark,
        }
    }

    /// Short description for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "nothing",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The position of the value at `path`, or of the deepest node on the way there when the
    /// path does not exist (a missing key is reported where its parent is).
    pub fn locate(&self, path: &[Seg<'_>]) -> Mark {
        let mut node = self;
        for seg in path {
            let next = match (seg, &node.kind) {
                (Seg::Key(k), NodeKind::Map(_)) => node.get(k),
                (Seg::Index(i), NodeKind::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.mark
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub mark: Mark,
    pub message: String,
}

fn mark_of(span: &Span) -> Mark {
    // saphyr's line is 1-based, its column 0-based.
    Mark {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

fn is_null_plain(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

struct Builder {
    /// Anchored nodes and their sizes, so an alias is counted before it is copied.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
}

impl Builder {
    fn count(&mut self, n: usize, mark: Mark) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                mark,
                message: format!("document too large (more than {MAX_NODES} values)"),
            });
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size_of(node)));
        }
    }
}

fn size_of(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Null | NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(size_of).sum::<usize>(),
        NodeKind::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + size_of(v)).sum::<usize>(),
    }
}

type Events<'i> = std::iter::Peekable<Parser<'i, saphyr_parser::StrInput<'i>>>;

fn next_event<'i>(events: &mut Events<'i>) -> Result<(Event<'i>, Span), YamlError> {
    match events.next() {
        Some(Ok(ev)) => Ok(ev),
        Some(Err(e)) => Err(YamlError {
            mark: Mark {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        }),
        None => Err(YamlError {
            mark: Mark::default(),
            message: "unexpected end of the document".into(),
        }),
    }
}

/// Parse one YAML document. An empty file is an empty mapping.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut events: Events<'_> = Parser::new_from_str(text).peekable();
    let mut b = Builder {
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut root: Option<Node> = None;
    loop {
        let (ev, span) = next_event(&mut events)?;
        match ev {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                if root.is_some() {
                    return Err(YamlError {
                        mark: mark_of(&span),
                        message: "only one YAML document is allowed in a config file".into(),
                    });
                }
                let (ev, span) = next_event(&mut events)?;
                root = Some(build(&mut b, &mut events, ev, span)?);
            }
            _ => {
                return Err(YamlError {
                    mark: mark_of(&span),
                    message: "unexpected content outside a document".into(),
                });
            }
        }
    }
    Ok(root.unwrap_or(Node {
        kind: NodeKind::Map(Vec::new()),
        mark: Mark { line: 1, col: 1 },
    }))
}

fn build<'i>(
    b: &mut Builder,
    events: &mut Events<'i>,
    ev: Event<'i>,
    span: Span,
) -> Result<Node, YamlError> {
    let mark = mark_of(&span);
    b.count(1, mark)?;
    match ev {
        Event::Scalar(text, style, anchor, _tag) => {
            let quoted = !matches!(style, ScalarStyle::Plain);
            let kind = if !quoted && is_null_plain(&text) {
                NodeKind::Null
            } else {
                NodeKind::Scalar {
                    text: text.into_owned(),
                    quoted,
                }
            };
            let node = Node { kind, mark };
            b.remember(anchor, &node);
            Ok(node)
        }
        Event::Alias(id) => {
            let size = b
                .anchors
                .get(&id)
                .map(|(_, size)| *size)
                .ok_or_else(|| YamlError {
                    mark,
                    message: "alias to an unknown anchor".into(),
                })?;
            // Counted before the copy: an alias bomb is refused before it costs memory.
            b.count(size, mark)?;
            let node = b.anchors[&id].0.clone();
            // The alias is reported where it is used.
            Ok(Node { mark, ..node })
        }
        Event::SequenceStart(anchor, _tag) => {
            let mut items = Vec::new();
            loop {
                let (ev, span) = next_event(events)?;
                if matches!(ev, Event::SequenceEnd) {
                    break;
                }
                items.push(build(b, events, ev, span)?);
            }
            let node = Node {
                kind: NodeKind::Seq(items),
                mark,
            };
            b.remember(anchor, &node);
            Ok(node)
        }
        Event::MappingStart(anchor, _tag) => {
            let mut entries = Vec::new();
            loop {
                let (ev, span) = next_event(events)?;
                if matches!(ev, Event::MappingEnd) {
                    break;
                }
                let key_node = build(b, events, ev, span)?;
                let key = match key_node.kind {
                    NodeKind::Scalar { text, .. } => Key {
                        text,
                        mark: key_node.mark,
                    },
                    NodeKind::Null => Key {
                        text: String::new(),
                        mark: key_node.mark,
                    },
                    _ => {
                        return Err(YamlError {
                            mark: key_node.mark,
                            message: "a mapping key must be a plain value, not a list or mapping"
                                .into(),
                        });
                    }
                };
                let (ev, span) = next_event(events)?;
                let value = build(b, events, ev, span)?;
                entries.push((key, value));
            }
            let node = Node {
                kind: NodeKind::Map(entries),
                mark,
            };
            b.remember(anchor, &node);
            Ok(node)
        }
        other => Err(YamlError {
            mark,
            message: format!("unexpected YAML event {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(n: &Node) -> &str {
        match &n.kind {
            NodeKind::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based_line_and_column() {
        let root = parse("a: 1\nb:\n  c: \"x\"\n  d: [1, 2]\n").unwrap();
        let c = root.get("b").unwrap().get("c").unwrap();
        assert_eq!(scalar(c), "x");
        assert_eq!(c.mark, Mark { line: 3, col: 6 });
        let mark = root.locate(&[Seg::Key("b"), Seg::Key("d"), Seg::Index(1)]);
        assert_eq!(mark, Mark { line: 4, col: 10 });
    }

    #[test]
    fn missing_path_points_at_deepest_parent() {
        let root = parse("a:\n  b: 1\n").unwrap();
        let mark = root.locate(&[Seg::Key("a"), Seg::Key("zzz")]);
        assert_eq!(mark, root.get("a").unwrap().mark);
    }

    #[test]
    fn empty_and_null_values() {
        let root = parse("a:\nb: ~\nc: ''\n").unwrap();
        assert_eq!(root.get("a").unwrap().kind, NodeKind::Null);
        assert_eq!(root.get("b").unwrap().kind, NodeKind::Null);
        assert_eq!(scalar(root.get("c").unwrap()), "");
        assert_eq!(parse("").unwrap().kind, NodeKind::Map(vec![]));
    }

    #[test]
    fn aliases_resolve_and_are_bounded() {
        let root = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(scalar(root.get("b").unwrap().get("k").unwrap()), "v");
        // Classic "billion laughs": each level doubles ten times.
        let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            bomb.push_str(&format!(
                "l{i}: &l{i} [*l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}]\n"
            ));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err.message.contains("too large"), "{err:?}");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.mark.line >= 1, "{err:?}");
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err.message.contains("one YAML document"), "{err:?}");
    }
}
