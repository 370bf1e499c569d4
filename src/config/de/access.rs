//! The sequence and mapping accessors of the [`De`] deserializer: where unknown keys,
//! duplicate keys and unreadable elements are recorded and skipped.

use super::{De, DeError, Path, Result, record};
use crate::config::error::{Issues, did_you_mean};
use crate::config::yaml::{Key, Mark, Node};
use serde::de::{self, Deserialize, DeserializeSeed, IntoDeserializer};
use std::cell::RefCell;
use std::collections::HashSet;

pub(super) struct SeqAcc<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'a Path<'a>,
    sink: &'a RefCell<Issues>,
    quiet: bool,
}

impl<'a> SeqAcc<'a> {
    pub(super) fn new(de: &De<'a>, items: &'a [Node]) -> Self {
        SeqAcc {
            items: items.iter().enumerate(),
            path: de.path,
            sink: de.sink,
            quiet: de.quiet,
        }
    }

    fn de<'b>(&'b self, node: &'b Node, path: &'b Path<'b>) -> De<'b> {
        De {
            node,
            path,
            sink: self.sink,
            quiet: self.quiet,
        }
    }
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = Path::Index(self.path, i);
        let de = self.de(node, &path);
        let quiet = self.quiet;
        seed.deserialize(de).map(Some).map_err(|e| {
            if !e.recorded && !quiet {
                record(self.sink, node.mark, &path, e.msg);
            }
            DeError::recorded()
        })
    }

    /// A list element that cannot be read is recorded and skipped, so the following elements
    /// are still checked.
    fn next_element<T: Deserialize<'de>>(&mut self) -> Result<Option<T>> {
        loop {
            let Some((i, node)) = self.items.next() else {
                return Ok(None);
            };
            let path = Path::Index(self.path, i);
            match T::deserialize(self.de(node, &path)) {
                Ok(v) => return Ok(Some(v)),
                Err(e) => {
                    if !e.recorded && !self.quiet {
                        record(self.sink, node.mark, &path, e.msg);
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

pub(super) struct MapAcc<'a> {
    entries: std::slice::Iter<'a, (Key, Node)>,
    fields: Option<&'static [&'static str]>,
    current: Option<&'a (Key, Node)>,
    seen: HashSet<&'a str>,
    path: &'a Path<'a>,
    sink: &'a RefCell<Issues>,
    quiet: bool,
}

impl<'a> MapAcc<'a> {
    pub(super) fn new(
        de: &De<'a>,
        entries: &'a [(Key, Node)],
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        MapAcc {
            entries: entries.iter(),
            fields,
            current: None,
            seen: HashSet::new(),
            path: de.path,
            sink: de.sink,
            quiet: de.quiet,
        }
    }

    fn note(&self, mark: Mark, path: &Path<'_>, msg: String) {
        if !self.quiet {
            record(self.sink, mark, path, msg);
        }
    }

    fn current(&self) -> Result<&'a (Key, Node)> {
        self.current
            .ok_or_else(|| de::Error::custom("internal error: value requested before its key"))
    }

    fn de<'b>(&'b self, node: &'b Node, path: &'b Path<'b>, quiet: bool) -> De<'b> {
        De {
            node,
            path,
            sink: self.sink,
            quiet: self.quiet || quiet,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        loop {
            let Some(entry) = self.entries.next() else {
                return Ok(None);
            };
            let key = &entry.0;
            let path = Path::Key(self.path, &key.text);
            if let Some(fields) = self.fields
                && !fields.contains(&key.text.as_str())
            {
                let msg = format!(
                    "unknown key `{}`{}",
                    key.text,
                    did_you_mean(&key.text, fields.iter().copied())
                );
                self.note(key.mark, &path, msg);
                continue;
            }
            if !self.seen.insert(&key.text) {
                self.note(
                    key.mark,
                    &path,
                    format!("key `{}` is given more than once", key.text),
                );
                continue;
            }
            self.current = Some(entry);
            let key_de: de::value::StrDeserializer<'_, DeError> =
                key.text.as_str().into_deserializer();
            return seed.deserialize(key_de).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let (key, node) = self.current()?;
        let path = Path::Key(self.path, &key.text);
        seed.deserialize(self.de(node, &path, false)).map_err(|e| {
            if !e.recorded {
                self.note(node.mark, &path, e.msg);
            }
            DeError::recorded()
        })
    }

    /// A value that cannot be read is recorded, then read again as if it were absent, so the
    /// struct around it (whose fields are all optional) is still built and checked.
    fn next_value<V: Deserialize<'de>>(&mut self) -> Result<V> {
        let (key, node) = self.current()?;
        let path = Path::Key(self.path, &key.text);
        match V::deserialize(self.de(node, &path, false)) {
            Ok(v) => Ok(v),
            Err(e) => {
                if !e.recorded {
                    self.note(node.mark, &path, e.msg);
                }
                let absent = Node::null(node.mark);
                V::deserialize(self.de(&absent, &path, true)).map_err(|_| DeError::recorded())
            }
        }
    }

    fn next_entry<K: Deserialize<'de>, V: Deserialize<'de>>(&mut self) -> Result<Option<(K, V)>> {
        match self.next_key::<K>()? {
            Some(k) => Ok(Some((k, self.next_value::<V>()?))),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
