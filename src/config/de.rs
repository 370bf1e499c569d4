//! A serde `Deserializer` over the positioned YAML tree that records every problem instead of
//! stopping at the first.
//!
//! Written by hand on purpose: no YAML serde crate reports *all* errors with their positions.
//! What it does differently from a plain deserializer:
//!
//! - `deserialize_struct` knows the struct's field names, so an unknown key is recorded with its
//!   position and the closest known name ("did you mean"), then skipped;
//! - a value of the wrong type is recorded where it is, and the field falls back to "absent"
//!   (all file-struct fields are `Option` or defaulted), so the rest of the file is still read;
//! - a list element that cannot be read is recorded and skipped;
//! - a key given twice in one mapping is an error (YAML forbids it; serde would keep the last).

mod access;

use super::error::{Issues, did_you_mean};
use super::yaml::{Mark, Node, NodeKind};
use access::{MapAcc, SeqAcc};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

/// Deserialize `T` from `root`, recording problems into `issues`. `None` only when even the
/// top level could not be read.
pub fn from_node<T: DeserializeOwned>(root: &Node, issues: &mut Issues) -> Option<T> {
    let sink = RefCell::new(std::mem::take(issues));
    let res = T::deserialize(De {
        node: root,
        path: &Path::Root,
        sink: &sink,
        quiet: false,
    });
    *issues = sink.into_inner();
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            if !e.recorded {
                issues.push(root.mark, "", e.msg);
            }
            None
        }
    }
}

/// The key path to the value being read, as a linked list on the stack.
#[derive(Clone, Copy)]
pub enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, k) => f.write_str(k),
            Path::Key(parent, k) => write!(f, "{parent}.{k}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

#[derive(Debug)]
pub struct DeError {
    msg: String,
    /// Already recorded with its position; callers only need to recover.
    recorded: bool,
}

impl DeError {
    fn recorded() -> Self {
        DeError {
            msg: String::new(),
            recorded: true,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            msg: msg.to_string(),
            recorded: false,
        }
    }
}

type Result<T> = std::result::Result<T, DeError>;

struct De<'a> {
    node: &'a Node,
    path: &'a Path<'a>,
    sink: &'a RefCell<Issues>,
    /// Set while re-reading a failed value as "absent": no new errors then.
    quiet: bool,
}

fn record(sink: &RefCell<Issues>, mark: Mark, path: &Path<'_>, msg: String) {
    sink.borrow_mut().push(mark, path.to_string(), msg);
}

impl<'a> De<'a> {
    fn fail(&self, msg: String) -> DeError {
        if !self.quiet {
            record(self.sink, self.node.mark, self.path, msg);
        }
        DeError::recorded()
    }

    fn scalar(&self, expected: &str) -> Result<&'a str> {
        match &self.node.kind {
            NodeKind::Scalar { text, .. } => Ok(text),
            _ => Err(self.fail(format!(
                "expected {expected}, found {}",
                self.node.describe()
            ))),
        }
    }

    fn number<T: std::str::FromStr>(&self, expected: &str) -> Result<T> {
        let text = self.scalar(expected)?;
        text.trim()
            .parse::<T>()
            .map_err(|_| self.fail(format!("expected {expected}, found `{text}`")))
    }

    fn boolean(&self) -> Result<bool> {
        let text = self.scalar("true or false")?;
        match text {
            "true" | "True" | "TRUE" => Ok(true),
            "false" | "False" | "FALSE" => Ok(false),
            _ => Err(self.fail(format!("expected true or false, found `{text}`"))),
        }
    }
}

macro_rules! number {
    ($method:ident, $visit:ident, $ty:ty, $what:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let n: $ty = self.number($what)?;
            visitor.$visit(n)
        }
    };
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Scalar { text, quoted: true } => visitor.visit_str(text),
            NodeKind::Scalar {
                text,
                quoted: false,
            } => {
                // YAML 1.2 core schema for plain scalars.
                match text.as_str() {
                    "true" | "True" | "TRUE" => return visitor.visit_bool(true),
                    "false" | "False" | "FALSE" => return visitor.visit_bool(false),
                    _ => {}
                }
                if let Ok(n) = text.parse::<u64>() {
                    return visitor.visit_u64(n);
                }
                if let Ok(n) = text.parse::<i64>() {
                    return visitor.visit_i64(n);
                }
                if text.bytes().any(|b| b.is_ascii_digit())
                    && let Ok(f) = text.parse::<f64>()
                {
                    return visitor.visit_f64(f);
                }
                visitor.visit_str(text)
            }
            NodeKind::Seq(items) => visitor.visit_seq(SeqAcc::new(&self, items)),
            NodeKind::Map(entries) => visitor.visit_map(MapAcc::new(&self, entries, None)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_bool(self.boolean()?)
    }

    number!(deserialize_i8, visit_i8, i8, "a whole number");
    number!(deserialize_i16, visit_i16, i16, "a whole number");
    number!(deserialize_i32, visit_i32, i32, "a whole number");
    number!(deserialize_i64, visit_i64, i64, "a whole number");
    number!(deserialize_u8, visit_u8, u8, "a whole number from 0 to 255");
    number!(
        deserialize_u16,
        visit_u16,
        u16,
        "a whole number from 0 to 65535"
    );
    number!(
        deserialize_u32,
        visit_u32,
        u32,
        "a whole number (0 or more)"
    );
    number!(
        deserialize_u64,
        visit_u64,
        u64,
        "a whole number (0 or more)"
    );
    number!(deserialize_f32, visit_f32, f32, "a number");
    number!(deserialize_f64, visit_f64, f64, "a number");

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let text = self.scalar("a single character")?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(self.fail(format!("expected a single character, found `{text}`"))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_str(self.scalar("a text value")?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            _ => Err(self.fail(format!("expected nothing, found {}", self.node.describe()))),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match &self.node.kind {
            NodeKind::Seq(items) => visitor.visit_seq(SeqAcc::new(&self, items)),
            NodeKind::Null => visitor.visit_seq(SeqAcc::new(&self, &[])),
            _ => Err(self.fail(format!("expected a list, found {}", self.node.describe()))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match &self.node.kind {
            NodeKind::Map(entries) => visitor.visit_map(MapAcc::new(&self, entries, None)),
            NodeKind::Null => visitor.visit_map(MapAcc::new(&self, &[], None)),
            _ => Err(self.fail(format!(
                "expected a mapping, found {}",
                self.node.describe()
            ))),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match &self.node.kind {
            // A `listen` entry may be an address or a mapping (see `file::FileListen`).
            NodeKind::Scalar { text, .. } if name == super::file::SCALAR_OR_MAPPING => {
                visitor.visit_str(text)
            }
            NodeKind::Map(entries) => visitor.visit_map(MapAcc::new(&self, entries, Some(fields))),
            NodeKind::Null => visitor.visit_map(MapAcc::new(&self, &[], Some(fields))),
            _ => Err(self.fail(format!(
                "expected a mapping with keys {}, found {}",
                fields.join(", "),
                self.node.describe()
            ))),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let expected = format!("one of {}", variants.join(", "));
        let text = self.scalar(&expected)?;
        if variants.contains(&text) {
            visitor.visit_enum(text.into_deserializer())
        } else {
            Err(self.fail(format!(
                "unknown value `{text}`, expected {expected}{}",
                did_you_mean(text, variants.iter().copied())
            )))
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        port: Option<u16>,
        name: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        LeastConn,
        RoundRobin,
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
        flag: Option<bool>,
        mode: Option<Mode>,
    }

    fn load(text: &str) -> (Option<Outer>, Vec<String>) {
        let root = parse(text).unwrap();
        let mut issues = Issues::default();
        let v = from_node::<Outer>(&root, &mut issues);
        let errs = issues
            .into_errors("f")
            .0
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        (v, errs)
    }

    #[test]
    fn reads_a_valid_document() {
        let (v, errs) =
            load("inner: {port: 80, name: a}\nlist:\n  - port: 1\nflag: true\nmode: round_robin\n");
        assert!(errs.is_empty(), "{errs:?}");
        let v = v.unwrap();
        assert_eq!(v.inner.unwrap().port, Some(80));
        assert_eq!(v.list.unwrap().len(), 1);
        assert_eq!(v.mode, Some(Mode::RoundRobin));
    }

    #[test]
    fn collects_every_error_with_position() {
        let text = "inner:\n  prot: 80\n  name: a\nflag: yes\nlist:\n  - port: 99999\n  - port: 2\nmode: leastconn\nextra: 1\n";
        let (v, errs) = load(text);
        let v = v.expect("document still read");
        assert_eq!(v.inner.as_ref().unwrap().name.as_deref(), Some("a"));
        assert_eq!(v.flag, None);
        let list = v.list.as_ref().unwrap();
        assert_eq!(
            list.len(),
            2,
            "a bad field makes the field absent, not the element"
        );
        assert_eq!((list[0].port, list[1].port), (None, Some(2)));
        assert_eq!(
            errs,
            vec![
                "f:2:3: inner.prot: unknown key `prot`; did you mean `port`?",
                "f:4:7: flag: expected true or false, found `yes`",
                "f:6:11: list[0].port: expected a whole number from 0 to 65535, found `99999`",
                "f:8:7: mode: unknown value `leastconn`, expected one of least_conn, round_robin; did you mean `least_conn`?",
                "f:9:1: extra: unknown key `extra`",
            ]
        );
    }

    #[test]
    fn wrong_shapes_and_duplicates_are_reported() {
        let (_, errs) = load("inner: 5\nflag: true\nflag: false\nlist: {a: 1}\n");
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("f:1:8: inner: expected a mapping"),
            "{errs:?}"
        );
        assert!(errs[1].contains("given more than once"), "{errs:?}");
        assert!(
            errs[2].contains("expected a list, found a mapping"),
            "{errs:?}"
        );
    }
}
