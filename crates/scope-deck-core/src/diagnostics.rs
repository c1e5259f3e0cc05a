//! File/line/key diagnostics for every TOML file the user edits (config, themes, keymaps).
//!
//! A performer who mistypes a key at sound-check must be told exactly where: every error carries
//! the file name, the 1-based line and column, the dotted key path and the offending value.
//! Parsing goes through [`SourceDoc`], which keeps a spanned tree of the file so both serde errors
//! (which only know a byte span) and semantic validation errors (which only know a key path) can
//! be located.

use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

/// One problem in one user-editable file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as shown to the user (path, or `<embedded>/name.toml` for built-in defaults).
    pub file: String,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// Dotted key path (`server.url`, `mappings[2].curve`); empty for file-level problems.
    pub key: String,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
    /// The offending value as written in the file, if there is one.
    pub value: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column.max(1))?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(v) = &self.value {
            write!(f, " (found {v})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one or more files; validation collects them all instead of stopping at
/// the first so a user fixes a file in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// True when nothing went wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A node of the span tree: where each key and value of a TOML file sits.
#[derive(Debug, Clone)]
enum Node {
    /// Keys in file order: (key, key span, value node, value span).
    Table(Vec<(String, Range<usize>, Node, Range<usize>)>),
    /// Items with their spans.
    Array(Vec<(Node, Range<usize>)>),
    /// Any scalar.
    Leaf,
}

impl Node {
    fn from_table(t: &DeTable<'_>) -> Node {
        Node::Table(
            t.iter()
                .map(|(k, v)| {
                    (
                        k.get_ref().to_string(),
                        k.span(),
                        Node::from_value(v.get_ref()),
                        v.span(),
                    )
                })
                .collect(),
        )
    }

    fn from_value(v: &DeValue<'_>) -> Node {
        match v {
            DeValue::Table(t) => Node::from_table(t),
            DeValue::Array(a) => Node::Array(
                a.iter()
                    .map(|i| (Node::from_value(i.get_ref()), i.span()))
                    .collect(),
            ),
            _ => Node::Leaf,
        }
    }

    /// Follows one path segment: (key-or-item span, value span, child).
    fn step(&self, seg: Seg<'_>) -> Option<(Range<usize>, Range<usize>, &Node)> {
        match (self, seg) {
            (Node::Table(entries), Seg::Key(k)) => entries
                .iter()
                .find(|e| e.0 == k)
                .map(|(_, ks, n, vs)| (ks.clone(), vs.clone(), n)),
            (Node::Array(items), Seg::Index(i)) => {
                items.get(i).map(|(n, s)| (s.clone(), s.clone(), n))
            }
            _ => None,
        }
    }
}

fn contains(r: &Range<usize>, at: usize) -> bool {
    r.start <= at && at < r.end.max(r.start + 1)
}

/// A TOML file kept with its text and a span tree, so that any key path or byte span can be
/// turned into `file:line:column` and a quoted value.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    name: String,
    text: String,
    root: Node,
}

impl SourceDoc {
    /// Parses `text` (named `name` in messages). A syntax error is returned located.
    pub fn parse(name: impl Into<String>, text: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        let text = text.into();
        let parsed = DeTable::parse(&text).map(|t| Node::from_table(t.get_ref()));
        match parsed {
            Ok(root) => Ok(SourceDoc { name, text, root }),
            Err(e) => {
                let doc = SourceDoc {
                    name,
                    text: text.clone(),
                    root: Node::Leaf,
                };
                Err(doc.error_from_toml(&e))
            }
        }
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Deserializes the whole document into `T` (raw structs use `deny_unknown_fields`).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str::<T>(&self.text).map_err(|e| self.error_from_toml(&e))
    }

    /// Parses `text` and deserializes it as `T`, the first step of every user file's check:
    /// `None` with the located error pushed when either fails.
    pub fn load<T: DeserializeOwned>(
        name: impl Into<String>,
        text: impl Into<String>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<(Self, T)> {
        let doc = SourceDoc::parse(name, text)
            .map_err(|e| errors.push(e))
            .ok()?;
        let raw = doc.deserialize().map_err(|e| errors.push(e)).ok()?;
        Some((doc, raw))
    }

    /// Converts a serde/TOML error into a located [`ConfigError`], naming the key it falls in.
    pub fn error_from_toml(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = self.line_col(span.start);
        let key = self
            .key_at(span.start)
            .or_else(|| self.key_by_text(span.start))
            .unwrap_or_default();
        let snippet = self
            .text
            .get(span.clone())
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let message = humanize(e.message().trim());
        // Do not quote the value twice when the message already does.
        let value = match snippet {
            Some(s) if !message.contains(s) && s.len() <= 80 && !s.contains('\n') => {
                Some(s.to_string())
            }
            _ => None,
        };
        ConfigError {
            file: self.name.clone(),
            line,
            column,
            key,
            message,
            value,
        }
    }

    /// An error about the value at `path`, located at its key (or the nearest existing parent)
    /// and quoting the value as written unless `value` is given.
    pub fn error_at(
        &self,
        path: &str,
        message: impl Into<String>,
        value: Option<String>,
    ) -> ConfigError {
        let (line, column) = match self.span_of(path) {
            Some(s) => self.line_col(s.start),
            None => (0, 0),
        };
        ConfigError {
            file: self.name.clone(),
            line,
            column,
            key: path.to_string(),
            message: message.into(),
            value: value.or_else(|| self.value_text(path)),
        }
    }

    /// The value at `path` exactly as written in the file (trimmed, shortened when long).
    pub fn value_text(&self, path: &str) -> Option<String> {
        let span = self.walk(path).filter(|w| w.2).map(|w| w.1)?;
        let s = self.text.get(span)?.trim();
        if s.contains('\n') || s.starts_with('[') && s.len() > 80 {
            return None;
        }
        if s.chars().count() > 80 {
            Some(format!("{}…", s.chars().take(77).collect::<String>()))
        } else {
            Some(s.to_string())
        }
    }

    /// 1-based (line, column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }

    /// Span of the key at `path` if it exists, else of the nearest existing parent's key.
    pub fn span_of(&self, path: &str) -> Option<Range<usize>> {
        self.walk(path).map(|w| w.0)
    }

    /// Walks `path`: (deepest key span, its value span, whether the whole path was found).
    fn walk(&self, path: &str) -> Option<(Range<usize>, Range<usize>, bool)> {
        let mut cur = &self.root;
        let mut best = None;
        for seg in split_path(path) {
            match cur.step(seg) {
                Some((ks, vs, next)) => {
                    best = Some((ks, vs));
                    cur = next;
                }
                None => return best.map(|(k, v)| (k, v, false)),
            }
        }
        best.map(|(k, v)| (k, v, true))
    }

    /// Best-effort key path for a byte offset from the raw text alone (used when the file does not
    /// parse): the nearest `[table]` header above plus the `key =` on that line.
    fn key_by_text(&self, at: usize) -> Option<String> {
        let (line_no, _) = self.line_col(at);
        let lines: Vec<&str> = self.text.lines().collect();
        let line = lines.get(line_no.checked_sub(1)?)?.trim();
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        let header = lines[..line_no - 1].iter().rev().find_map(|l| {
            let t = l.trim();
            t.starts_with('[')
                .then(|| t.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        });
        match (header, key) {
            (Some(h), Some(k)) => Some(format!("{h}.{k}")),
            (None, Some(k)) => Some(k),
            (Some(h), None) => Some(h),
            (None, None) => None,
        }
    }

    /// The dotted key path whose key or value contains byte `at` (deepest match).
    pub fn key_at(&self, at: usize) -> Option<String> {
        let mut path = String::new();
        key_at_node(&self.root, at, &mut path);
        if path.is_empty() { None } else { Some(path) }
    }
}

/// Replaces Rust type names in serde messages with words a performer knows.
fn humanize(msg: &str) -> String {
    let mut out = msg.to_string();
    for (rust, human) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        out = out.replace(rust, human);
    }
    out
}

/// Appends to `path` the deepest key containing `at`; returns whether anything matched.
fn key_at_node(node: &Node, at: usize, path: &mut String) -> bool {
    match node {
        Node::Table(entries) => {
            // Direct hit on a key or an inline value first.
            for (k, ks, child, vs) in entries {
                let deeper = {
                    let mut sub = String::new();
                    key_at_node(child, at, &mut sub).then_some(sub)
                };
                if contains(ks, at) || contains(vs, at) || deeper.is_some() {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if let Some(sub) = deeper {
                        if !sub.starts_with('[') {
                            path.push('.');
                        }
                        path.push_str(&sub);
                    }
                    return true;
                }
            }
            false
        }
        Node::Array(items) => {
            for (i, (child, s)) in items.iter().enumerate() {
                let mut sub = String::new();
                let deeper = key_at_node(child, at, &mut sub);
                if deeper || contains(s, at) {
                    path.push_str(&format!("[{i}]"));
                    if deeper {
                        if !sub.starts_with('[') {
                            path.push('.');
                        }
                        path.push_str(&sub);
                    }
                    return true;
                }
            }
            false
        }
        Node::Leaf => false,
    }
}

/// A segment of a dotted key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2]."c.d"` into segments; quoted keys may contain dots.
fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => i += 1,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && !(bytes[j] == b'"' && bytes[j - 1] != b'\\') {
                    j += 1;
                }
                out.push(Seg::Key(&path[start..j.min(path.len())]));
                i = j + 1;
            }
            b'[' => {
                let end = path[i..].find(']').map_or(path.len(), |e| i + e);
                if let Ok(n) = path[i + 1..end].parse() {
                    out.push(Seg::Index(n));
                }
                i = end + 1;
            }
            _ => {
                let end = path[i..].find(['.', '[']).map_or(path.len(), |e| i + e);
                out.push(Seg::Key(&path[i..end]));
                i = end;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Raw {
        server: RawServer,
        #[serde(default)]
        items: Vec<Item>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct RawServer {
        url: String,
        port: Option<u16>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        value: f32,
    }

    #[test]
    fn unknown_field_names_file_line_and_key() {
        let doc = SourceDoc::parse("c.toml", "[server]\nurl = \"x\"\nprot = 80\n").unwrap();
        let e = doc.deserialize::<Raw>().unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert_eq!(e.key, "server.prot", "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(
            e.to_string().starts_with("c.toml:3:1: key `server.prot`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_quotes_the_value() {
        let doc = SourceDoc::parse("c.toml", "[server]\nurl = \"x\"\nport = \"eighty\"\n").unwrap();
        let e = doc.deserialize::<Raw>().unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "server.port"), "{e}");
        // The message already quotes the value, so it is not repeated.
        assert!(
            e.message.contains("\"eighty\"") && e.message.contains("whole number"),
            "{e}"
        );
        assert_eq!(e.value, None, "{e}");
    }

    #[test]
    fn array_of_tables_paths_have_indices() {
        let text = "[server]\nurl = \"x\"\n[[items]]\nname = \"a\"\nvalue = 1.0\n[[items]]\nname = \"b\"\nvalue = \"no\"\n";
        let doc = SourceDoc::parse("c.toml", text).unwrap();
        let e = doc.deserialize::<Raw>().unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (8, "items[1].value"), "{e}");
        let e2 = doc.error_at("items[1].name", "bad name", None);
        assert_eq!(e2.line, 7);
        assert_eq!(e2.value.as_deref(), Some("\"b\""));
    }

    #[test]
    fn syntax_error_is_located() {
        let e = SourceDoc::parse("bad.toml", "[server]\nurl = \n").unwrap_err();
        assert_eq!(e.file, "bad.toml");
        assert_eq!(e.line, 2, "{e}");
        assert_eq!(e.key, "server.url", "{e}");
    }

    #[test]
    fn quoted_segments_may_hold_dots() {
        assert_eq!(
            split_path("a.\"b.c\"[2].d"),
            vec![Seg::Key("a"), Seg::Key("b.c"), Seg::Index(2), Seg::Key("d")]
        );
        let doc = SourceDoc::parse("k.toml", "[normal]\n\".\" = 3\n").unwrap();
        assert_eq!(doc.error_at("normal.\".\"", "x", None).line, 2);
    }

    #[test]
    fn missing_key_points_at_parent() {
        let doc = SourceDoc::parse("c.toml", "\n[server]\nport = 1\n").unwrap();
        let e = doc.deserialize::<Raw>().unwrap_err();
        assert!(e.message.contains("url"), "{e}");
        assert!(e.line >= 1, "{e}");
    }
}
