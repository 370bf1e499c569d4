//! `maps` (nginx `map`): a variable whose value is chosen by another template's value.
//!
//! Lookup order is nginx's: an exact key (compared case-insensitively, as nginx lowercases map
//! keys and the value looked up), then the `~REGEX` keys in file order (`~*` for a
//! case-insensitive regex), then `default`. Values are plain text (a pool name for
//! `upstream: $map`).

use super::{Facts, Template};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Map {
    pub name: String,
    from: Template,
    /// Lower-cased exact key -> index into `values`.
    exact: HashMap<String, usize>,
    regexes: Vec<(regex::Regex, usize)>,
    /// Every value the map can give; the last is `default`.
    values: Vec<String>,
}

/// A map key.
#[derive(Debug, Clone)]
pub enum Key {
    Exact(String),
    Regex(regex::Regex),
}

impl Map {
    /// A map of `from`: `entries` in file order, `default` last.
    pub fn new(name: String, from: Template, entries: Vec<(Key, String)>, default: String) -> Map {
        let mut exact = HashMap::new();
        let mut regexes = Vec::new();
        let mut values = Vec::new();
        for (key, value) in entries {
            let at = values.len();
            values.push(value);
            match key {
                Key::Regex(re) => regexes.push((re, at)),
                Key::Exact(k) => {
                    exact.entry(k.to_ascii_lowercase()).or_insert(at);
                }
            }
        }
        values.push(default);
        Map {
            name,
            from,
            exact,
            regexes,
            values,
        }
    }

    /// The template whose value is looked up.
    pub fn from(&self) -> &Template {
        &self.from
    }

    /// Every value, `default` last.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// The index in [`Map::values`] chosen for `input`.
    pub fn choose(&self, input: &str) -> usize {
        let exact = if input.bytes().any(|b| b.is_ascii_uppercase()) {
            self.exact.get(&input.to_ascii_lowercase())
        } else {
            self.exact.get(input)
        };
        if let Some(&i) = exact {
            return i;
        }
        self.regexes
            .iter()
            .find(|(re, _)| re.is_match(input))
            .map_or(self.values.len() - 1, |&(_, i)| i)
    }

    /// The index of the value for a request.
    pub fn choose_for(&self, facts: &Facts<'_>) -> usize {
        match self.from.literal() {
            Some(s) => self.choose(s),
            None => {
                let mut input = String::new();
                self.from.render_into(facts, None, &mut input);
                self.choose(&input)
            }
        }
    }

    /// The value for a request.
    pub fn value(&self, facts: &Facts<'_>) -> &str {
        &self.values[self.choose_for(facts)]
    }
}
