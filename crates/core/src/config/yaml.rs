//! The spanned YAML tree: parsing text into [`Node`]s that remember file, line and column, with
//! the scalar semantics of Ruby's Psych (YAML 1.1 booleans, integers with `_`/`,`, octal, base 60,
//! `:symbols`, dates), anchors, aliases, `<<` merge keys and "last duplicate key wins".

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

/// Where a node starts: the file, a 1-based line and a 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The file name as given to the loader (e.g. `config/deploy.yml`).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

impl Span {
    /// A span at `line:col` in `file`.
    pub fn new(file: &Arc<str>, line: usize, col: usize) -> Self {
        Self {
            file: Arc::clone(file),
            line,
            col,
        }
    }

    /// A span for values that were not written in any file (defaults, derived values).
    pub fn synthetic() -> Self {
        Self {
            file: Arc::from(""),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A YAML value as Psych loads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null`, or an empty value.
    Null,
    /// `true/false/yes/no/on/off` in any case.
    Bool(bool),
    /// An integer (decimal, `0x`, `0b`, leading-zero octal, base 60, `_` and `,` separators).
    Int(i64),
    /// A float, including `.inf` and `.nan`.
    Float(f64),
    /// A string (any quoted or block scalar, or a plain scalar that is nothing else).
    Str(String),
    /// A Ruby symbol written as `:name`; holds the name without the colon.
    Symbol(String),
    /// A date or timestamp, kept as written.
    Date(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in insertion order; keys are unique (the last duplicate wins, in the first
    /// position, like a Ruby `Hash`).
    Map(Vec<(Key, Node)>),
}

/// A mapping key: its text (as Ruby's `to_s` would give it) and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key was written.
    pub span: Span,
}

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub span: Span,
    /// The YAML tag, when one was written (e.g. `!ruby/object:Net::SSH::Proxy::Jump`).
    pub tag: Option<String>,
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// What went wrong, in the parser's words.
    pub message: String,
    /// Where.
    pub span: Span,
}

/// Maximum nesting depth accepted, so hostile input cannot exhaust the stack later.
const MAX_DEPTH: usize = 200;
/// Maximum number of nodes an alias expansion may copy (billion-laughs guard).
const MAX_ALIAS_NODES: usize = 200_000;

impl Node {
    /// A node with no source position.
    pub fn synthetic(value: Value) -> Self {
        Self {
            value,
            span: Span::synthetic(),
            tag: None,
        }
    }

    /// The string of a `Str` node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries of a `Map` node.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items of a `Seq` node.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean of a `Bool` node.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The integer of an `Int` node.
    pub fn as_int(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// Looks a key up in a map node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// The key entry (with its span) of a map node.
    pub fn get_key(&self, key: &str) -> Option<&Key> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, _)| k)
    }

    /// Whether a map node has the key (even with a null value).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Ruby's `nil?`.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Ruby's `present?`: not nil, not false, not an empty or whitespace string, not an empty
    /// collection.
    pub fn is_present(&self) -> bool {
        match &self.value {
            Value::Null | Value::Bool(false) => false,
            Value::Str(s) | Value::Symbol(s) => !s.trim().is_empty(),
            Value::Seq(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            _ => true,
        }
    }

    /// Ruby truthiness: anything but nil and false.
    pub fn is_truthy(&self) -> bool {
        !matches!(self.value, Value::Null | Value::Bool(false))
    }

    /// Whether Kamal's validator calls the value "stringish": a string, symbol, number or boolean.
    pub fn is_stringish(&self) -> bool {
        matches!(
            self.value,
            Value::Str(_) | Value::Symbol(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_)
        )
    }

    /// Ruby's `to_s` of a scalar (symbols without the colon, nil as the empty string); `None` for
    /// collections.
    pub fn to_ruby_string(&self) -> Option<String> {
        Some(match &self.value {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => ruby_float(*f),
            Value::Str(s) | Value::Symbol(s) | Value::Date(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => return None,
        })
    }

    /// Structural equality that ignores spans and tags (Ruby `==` on the loaded values).
    pub fn same_value(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .any(|(k2, v2)| k.name == k2.name && v.same_value(v2))
                    })
            }
            #[expect(clippy::float_cmp, reason = "Ruby's == on floats")]
            (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "Ruby compares 1 == 1.0 the same way"
                )]
                let a = *a as f64;
                #[expect(clippy::float_cmp, reason = "Ruby's == on numbers")]
                let equal = a == *b;
                equal
            }
            (a, b) => a == b,
        }
    }

    /// Sets `key` in a map node: an existing key keeps its position and takes the new value.
    pub fn map_set(entries: &mut Vec<(Key, Node)>, key: Key, value: Node) {
        if let Some(slot) = entries.iter_mut().find(|(k, _)| k.name == key.name) {
            slot.1 = value;
        } else {
            entries.push((key, value));
        }
    }

    /// `ActiveSupport`'s `deep_merge`: maps merge key by key, recursively; everything else in
    /// `other` replaces what is in `self`.
    #[must_use]
    pub fn deep_merge(&self, other: &Node) -> Node {
        match (&self.value, &other.value) {
            (Value::Map(base), Value::Map(over)) => {
                let mut merged = base.clone();
                for (k, v) in over {
                    if let Some(slot) = merged.iter_mut().find(|(bk, _)| bk.name == k.name) {
                        slot.1 = slot.1.deep_merge(v);
                    } else {
                        merged.push((k.clone(), v.clone()));
                    }
                }
                Node {
                    value: Value::Map(merged),
                    span: self.span.clone(),
                    tag: self.tag.clone(),
                }
            }
            _ => other.clone(),
        }
    }

    /// A short word for the node's type, as used in messages.
    pub fn type_word(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Symbol(_) => "a symbol",
            Value::Date(_) => "a date",
            Value::Seq(_) => "an array",
            Value::Map(_) => "a hash",
        }
    }

    fn count_nodes(&self) -> usize {
        1 + match &self.value {
            Value::Seq(s) => s.iter().map(Node::count_nodes).sum(),
            Value::Map(m) => m.iter().map(|(_, v)| 1 + v.count_nodes()).sum(),
            _ => 0,
        }
    }
}

/// Ruby's `Float#to_s`.
pub fn ruby_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        let exp: i32 = exp.parse().unwrap_or(0);
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { "-" } else { "+" },
            exp.abs()
        );
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Parses YAML text into the first document's root node. An empty stream gives `Ok(None)`.
/// `line_map`, when given, maps each line of `text` (1-based, index `line - 1`) to the line of
/// the original file (for text produced by ERB).
pub fn parse(
    text: &str,
    file: &str,
    line_map: Option<&[usize]>,
) -> Result<Option<Node>, YamlError> {
    let file: Arc<str> = Arc::from(file);
    let mapped = |line: usize| -> usize {
        match line_map {
            Some(map) if line >= 1 && line <= map.len() => map[line - 1],
            _ => line,
        }
    };
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| YamlError {
            message: e.info().to_string(),
            span: Span::new(&file, mapped(e.marker().line()), e.marker().col() + 1),
        })?;
        let at = Span::new(&file, mapped(span.start.line()), span.start.col() + 1);
        match builder.event(event, at)? {
            Flow::Continue => {}
            Flow::Done => break,
        }
    }
    Ok(builder.root)
}

enum Flow {
    Continue,
    Done,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
        tag: Option<String>,
    },
    Map {
        entries: Vec<(Key, Node)>,
        pending_key: Option<(Key, bool)>,
        span: Span,
        anchor: usize,
        tag: Option<String>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
    alias_budget: usize,
}

fn tag_text(tag: Option<&Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

impl Builder {
    #[expect(clippy::too_many_lines, reason = "one arm per parser event")]
    fn event(&mut self, event: Event<'_>, at: Span) -> Result<Flow, YamlError> {
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => Ok(Flow::Continue),
            Event::StreamEnd => Ok(Flow::Done),
            Event::DocumentStart(_) => {
                self.documents += 1;
                // Psych's `load` returns the first document only.
                Ok(if self.documents > 1 {
                    Flow::Done
                } else {
                    Flow::Continue
                })
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id) else {
                    return Err(YamlError {
                        message: "unknown alias".into(),
                        span: at,
                    });
                };
                self.alias_budget += node.count_nodes();
                if self.alias_budget > MAX_ALIAS_NODES {
                    return Err(YamlError {
                        message: "aliases expand to too many nodes".into(),
                        span: at,
                    });
                }
                let node = node.clone();
                Ok(self.push(node, false))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag_text(tag.as_deref());
                let plain = style == ScalarStyle::Plain;
                let value = resolve_scalar(&text, plain, tag.as_deref());
                let node = Node {
                    value,
                    span: at,
                    tag: tag.filter(|t| !t.starts_with("tag:yaml.org")),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(self.push(node, plain))
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_depth(&at)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    span: at,
                    anchor,
                    tag: tag_text(tag.as_deref()),
                });
                Ok(Flow::Continue)
            }
            Event::MappingStart(anchor, tag) => {
                self.check_depth(&at)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    pending_key: None,
                    span: at,
                    anchor,
                    tag: tag_text(tag.as_deref()),
                });
                Ok(Flow::Continue)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        span,
                        anchor,
                        tag,
                    }) => {
                        let node = Node {
                            value: Value::Seq(items),
                            span,
                            tag,
                        };
                        if anchor > 0 {
                            self.anchors.insert(anchor, node.clone());
                        }
                        node
                    }
                    Some(Frame::Map {
                        entries,
                        span,
                        anchor,
                        tag,
                        ..
                    }) => {
                        let node = Node {
                            value: Value::Map(entries),
                            span,
                            tag,
                        };
                        if anchor > 0 {
                            self.anchors.insert(anchor, node.clone());
                        }
                        node
                    }
                    None => return Ok(Flow::Continue),
                };
                Ok(self.push(node, false))
            }
        }
    }

    fn check_depth(&self, at: &Span) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                span: at.clone(),
            });
        }
        Ok(())
    }

    fn push(&mut self, node: Node, plain_scalar: bool) -> Flow {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let name = key_name(&node);
                    *pending_key = Some((
                        Key {
                            name,
                            span: node.span.clone(),
                        },
                        plain_scalar,
                    ));
                }
                Some((key, key_plain)) => {
                    if key.name == "<<" && key_plain {
                        merge_into(entries, key, node);
                    } else {
                        Node::map_set(entries, key, node);
                    }
                }
            },
        }
        Flow::Continue
    }
}

/// Psych's `<<` handling: a map is `merge!`d at this point (overwriting earlier keys), a list of
/// maps is merged with the earlier maps winning, anything else is kept as a plain `<<` key.
fn merge_into(entries: &mut Vec<(Key, Node)>, key: Key, value: Node) {
    match &value.value {
        Value::Map(m) => {
            for (k, v) in m {
                Node::map_set(entries, k.clone(), v.clone());
            }
        }
        Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => {
            let mut combined: Vec<(Key, Node)> = Vec::new();
            for item in items.iter().rev() {
                if let Value::Map(m) = &item.value {
                    for (k, v) in m {
                        Node::map_set(&mut combined, k.clone(), v.clone());
                    }
                }
            }
            for (k, v) in combined {
                Node::map_set(entries, k, v);
            }
        }
        _ => Node::map_set(entries, key, value),
    }
}

fn key_name(node: &Node) -> String {
    match &node.value {
        Value::Symbol(s) => format!(":{s}"),
        other => Node::synthetic(other.clone())
            .to_ruby_string()
            .unwrap_or_else(|| match other {
                Value::Seq(_) => "[...]".into(),
                _ => "{...}".into(),
            }),
    }
}

/// Resolves a scalar the way Psych's `ScalarScanner#tokenize` does (non-plain scalars are strings).
pub fn resolve_scalar(text: &str, plain: bool, tag: Option<&str>) -> Value {
    match tag {
        Some("tag:yaml.org,2002:str" | "!str") => return Value::Str(text.to_string()),
        Some("tag:yaml.org,2002:int") => {
            if let Some(i) = parse_int(text) {
                return Value::Int(i);
            }
        }
        Some("tag:yaml.org,2002:float") => {
            if let Ok(f) = text.replace(['_', ','], "").parse::<f64>() {
                return Value::Float(f);
            }
        }
        Some("!ruby/symbol" | "!ruby/sym") => return Value::Symbol(text.to_string()),
        _ => {}
    }
    if !plain {
        return Value::Str(text.to_string());
    }
    tokenize(text)
}

fn is_stringy_start(s: &str) -> bool {
    // /^[^\d.:-]?[[:alpha:]_\s!@#$%\^&*(){}<>|\/\\~;=]+/
    let class = |c: char| {
        c.is_alphabetic() || c == '_' || c.is_whitespace() || "!@#$%^&*(){}<>|/\\~;=".contains(c)
    };
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if class(first) {
        return true;
    }
    if first.is_ascii_digit() || first == '.' || first == ':' || first == '-' {
        return false;
    }
    chars.next().is_some_and(class)
}

fn tokenize(s: &str) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    if is_stringy_start(s) || s.contains('\n') {
        if s.chars().count() > 5 {
            return Value::Str(s.into());
        }
        let lower = s.to_ascii_lowercase();
        if !matches!(
            lower.chars().next(),
            Some('y' | 't' | 'o' | 'n' | 'f' | '~')
        ) {
            return Value::Str(s.into());
        }
        return match lower.as_str() {
            "~" | "null" => Value::Null,
            "yes" | "true" | "on" => Value::Bool(true),
            "no" | "false" | "off" => Value::Bool(false),
            _ => Value::Str(s.into()),
        };
    }
    if is_time(s) {
        return Value::Date(ruby_time_yaml(s).unwrap_or_else(|| s.into()));
    }
    if is_date(s) {
        return Value::Date(s.into());
    }
    let lower = s.to_ascii_lowercase();
    if lower == ".inf" || lower == "+.inf" {
        return Value::Float(f64::INFINITY);
    }
    if lower == "-.inf" {
        return Value::Float(f64::NEG_INFINITY);
    }
    if lower == ".nan" {
        return Value::Float(f64::NAN);
    }
    if s.len() > 1 && s.starts_with(':') {
        let rest = &s[1..];
        for q in ['"', '\''] {
            if rest.len() >= 2 && rest.starts_with(q) && rest[1..].contains(q) {
                let inner_end = rest[1..].rfind(q).map_or(rest.len(), |i| i + 1);
                let inner = &rest[1..inner_end];
                return Value::Symbol(inner.strip_prefix(':').unwrap_or(inner).to_string());
            }
        }
        return Value::Symbol(rest.to_string());
    }
    if let Some(i) = sexagesimal_int(s) {
        return Value::Int(i);
    }
    if is_float(s) {
        if s.trim_start_matches(['-', '+']) == "." {
            return Value::Str(s.into());
        }
        let cleaned: String = s.chars().filter(|c| *c != '_' && *c != ',').collect();
        let cleaned = cleaned.replace(".e", "e").replace(".E", "E");
        let cleaned = cleaned.strip_suffix('.').unwrap_or(&cleaned).to_string();
        let cleaned =
            if cleaned.starts_with('.') || cleaned.starts_with("-.") || cleaned.starts_with("+.") {
                cleaned.replacen('.', "0.", 1)
            } else {
                cleaned
            };
        if let Ok(f) = cleaned.parse::<f64>() {
            return Value::Float(f);
        }
        return Value::Str(s.into());
    }
    if let Some(i) = parse_int(s).filter(|_| is_legacy_integer(s)) {
        return Value::Int(i);
    }
    Value::Str(s.into())
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    // /^\d{4}-(?:1[012]|0\d|\d)-(?:[12]\d|3[01]|0\d|\d)$/
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || !all_digits(parts[0]) {
        return false;
    }
    let (m, d) = (parts[1], parts[2]);
    let month_ok = all_digits(m)
        && match m.len() {
            1 => true,
            2 => m.starts_with('0') || matches!(m, "10" | "11" | "12"),
            _ => false,
        };
    let day_ok = all_digits(d)
        && match d.len() {
            1 => true,
            2 => matches!(d.as_bytes()[0], b'0' | b'1' | b'2') || matches!(d, "30" | "31"),
            _ => false,
        };
    month_ok && day_ok
}

fn is_time(s: &str) -> bool {
    // -?\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d\d:\d\d(?:\.\d*)?(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?
    let s = s.strip_prefix('-').unwrap_or(s);
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize, min: usize, max: usize| -> bool {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max {
            *i += 1;
        }
        *i - start >= min
    };
    let lit = |i: &mut usize, c: u8| -> bool {
        if *i < b.len() && b[*i] == c {
            *i += 1;
            true
        } else {
            false
        }
    };
    if !(digits(&mut i, 4, 4)
        && lit(&mut i, b'-')
        && digits(&mut i, 1, 2)
        && lit(&mut i, b'-')
        && digits(&mut i, 1, 2))
    {
        return false;
    }
    if i < b.len() && (b[i] == b'T' || b[i] == b't') {
        i += 1;
    } else {
        let start = i;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if !(digits(&mut i, 1, 2)
        && lit(&mut i, b':')
        && digits(&mut i, 2, 2)
        && lit(&mut i, b':')
        && digits(&mut i, 2, 2))
    {
        return false;
    }
    if lit(&mut i, b'.') {
        digits(&mut i, 0, usize::MAX);
    }
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if i == b.len() {
        return true;
    }
    if lit(&mut i, b'Z') {
        return i == b.len();
    }
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
        if !digits(&mut i, 1, 2) {
            return false;
        }
        lit(&mut i, b':');
        digits(&mut i, 0, 2);
        return i == b.len();
    }
    false
}

/// A timestamp as Psych loads it and dumps it again: `YYYY-MM-DD HH:MM:SS.fffffffff` then ` Z`
/// for UTC, or the offset (`+00:00` when none was written: Psych takes local time, and the tool
/// runs in UTC).
fn ruby_time_yaml(s: &str) -> Option<String> {
    let (date, time) = s.split_once([' ', 't', 'T'])?;
    let (neg, date) = match date.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, date),
    };
    let rest: Vec<&str> = date.splitn(3, '-').collect();
    let (month, day) = (rest.get(1)?, rest.get(2)?);
    let time = time.trim_start();
    let clock_end = time
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(time.len());
    let clock: Vec<u32> = time[..clock_end]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let mut tail = &time[clock_end..];
    let mut fraction = String::new();
    if let Some(f) = tail.strip_prefix('.') {
        let n = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
        fraction = f[..n].to_string();
        tail = &f[n..];
    }
    fraction.truncate(9);
    while fraction.len() < 9 {
        fraction.push('0');
    }
    let tail = tail.trim();
    let zone = if tail == "Z" {
        "Z".to_string()
    } else if tail.is_empty() {
        "+00:00".to_string()
    } else {
        let sign = &tail[..1];
        let body = &tail[1..];
        let (h, m) = match body.split_once(':') {
            Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
            None if body.len() > 2 => (
                body[..body.len() - 2].parse().ok()?,
                body[body.len() - 2..].parse().ok()?,
            ),
            None => (body.parse().ok()?, 0),
        };
        format!("{sign}{h:02}:{m:02}")
    };
    Some(format!(
        "{}{}-{:02}-{:02} {:02}:{:02}:{:02}.{fraction} {zone}",
        if neg { "-" } else { "" },
        rest.first()?,
        month.parse::<u32>().ok()?,
        day.parse::<u32>().ok()?,
        clock.first()?,
        clock.get(1)?,
        clock.get(2)?,
    ))
}

fn sexagesimal_int(s: &str) -> Option<i64> {
    // /^[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}$/, computed as Psych does: n * 60 ** |e - 2|
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let parts: Vec<&str> = body.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let head = parts[0];
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    for p in &parts[1..] {
        let ok = match p.len() {
            1 => all_digits(p),
            2 => all_digits(p) && p.as_bytes()[0] <= b'5',
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    let mut total: i64 = 0;
    for (e, n) in s.split(':').enumerate() {
        // Ruby's String#to_i: leading sign and digits, underscores allowed between digits.
        let cleaned: String = n.chars().filter(|c| *c != '_').collect();
        let v: i64 = cleaned.parse().ok()?;
        let power = u32::try_from(e.abs_diff(2)).ok()?;
        total = total.checked_add(v.checked_mul(60_i64.checked_pow(power)?)?)?;
    }
    Some(total)
}

fn is_float(s: &str) -> bool {
    // /^(?:[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?)$/
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let Some((int_part, rest)) = body.split_once('.') else {
        return false;
    };
    let int_ok = int_part.starts_with(|c: char| c.is_ascii_digit())
        && int_part
            .chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == ',');
    if !int_part.is_empty() && !int_ok {
        return false;
    }
    let frac_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let exp = &rest[frac_end..];
    if exp.is_empty() {
        return true;
    }
    let Some(exp) = exp.strip_prefix(['e', 'E']) else {
        return false;
    };
    let Some(exp) = exp.strip_prefix(['-', '+']) else {
        return false;
    };
    all_digits(exp)
}

fn is_legacy_integer(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(bin) = body.strip_prefix("0b") {
        let t = bin.trim_start_matches(['_', ',']);
        return t.starts_with(['0', '1']) && t.chars().all(|c| matches!(c, '0' | '1' | '_' | ','));
    }
    if let Some(hex) = body.strip_prefix("0x") {
        let t = hex.trim_start_matches(['_', ',']);
        return t.starts_with(|c: char| c.is_ascii_hexdigit())
            && t.chars()
                .all(|c| c.is_ascii_hexdigit() || c == '_' || c == ',');
    }
    if let Some(oct) = body.strip_prefix('0') {
        if oct.is_empty() {
            return true;
        }
        let t = oct.trim_start_matches(['_', ',']);
        return t.starts_with(|c: char| ('0'..='7').contains(&c))
            && t.chars()
                .all(|c| ('0'..='7').contains(&c) || c == '_' || c == ',');
    }
    // [1-9](?:[0-9]|,[0-9]|_[0-9])*
    let b = body.as_bytes();
    if b.is_empty() || !(b'1'..=b'9').contains(&b[0]) {
        return false;
    }
    let mut i = 1;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            i += 1;
        } else if (b[i] == b',' || b[i] == b'_') && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

/// Ruby's `Integer(string.delete(",_"))`.
fn parse_int(s: &str) -> Option<i64> {
    let cleaned: String = s.chars().filter(|c| *c != '_' && *c != ',').collect();
    let (neg, body) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (
            false,
            cleaned.strip_prefix('+').unwrap_or(&cleaned).to_string(),
        ),
    };
    let magnitude = if let Some(hex) = body.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = body.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(body.trim_start_matches("0o"), 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Node {
        parse(text, "t.yml", None).unwrap().unwrap()
    }

    #[test]
    fn psych_scalars() {
        let cases: &[(&str, Value)] = &[
            ("yes", Value::Bool(true)),
            ("No", Value::Bool(false)),
            ("on", Value::Bool(true)),
            ("OFF", Value::Bool(false)),
            ("y", Value::Str("y".into())),
            ("~", Value::Null),
            ("null", Value::Null),
            ("3306", Value::Int(3306)),
            ("1_000", Value::Int(1000)),
            ("1,000", Value::Int(1000)),
            ("010", Value::Int(8)),
            ("08", Value::Str("08".into())),
            ("0x1f", Value::Int(31)),
            ("0b101", Value::Int(5)),
            ("-42", Value::Int(-42)),
            ("1.5", Value::Float(1.5)),
            ("1.", Value::Float(1.0)),
            (".5", Value::Float(0.5)),
            ("1.0e+3", Value::Float(1000.0)),
            (".inf", Value::Float(f64::INFINITY)),
            (":verbose", Value::Symbol("verbose".into())),
            ("1.1.1.1", Value::Str("1.1.1.1".into())),
            ("22:22", Value::Int(22 * 3600 + 22 * 60)),
            ("3306:3306", Value::Str("3306:3306".into())),
            ("2024-01-02", Value::Date("2024-01-02".into())),
            (
                "2024-1-2 10:00:00",
                Value::Date("2024-01-02 10:00:00.000000000 +00:00".into()),
            ),
            (
                "2024-01-02T10:00:00.5Z",
                Value::Date("2024-01-02 10:00:00.500000000 Z".into()),
            ),
            (
                "2024-01-02 10:00:00 +2",
                Value::Date("2024-01-02 10:00:00.000000000 +02:00".into()),
            ),
            (
                "2024-01-02 10:00:00.000000000 +00:00",
                Value::Date("2024-01-02 10:00:00.000000000 +00:00".into()),
            ),
            ("amd64", Value::Str("amd64".into())),
            ("25%", Value::Str("25%".into())),
            ("v0.9.2", Value::Str("v0.9.2".into())),
            ("localhost:5555", Value::Str("localhost:5555".into())),
        ];
        for (text, want) in cases {
            assert_eq!(&tokenize(text), want, "{text}");
        }
    }

    #[test]
    fn quoted_stays_string() {
        let n = load("a: 'yes'\nb: \"3306\"\nc: |\n  true\n");
        assert_eq!(n.get("a").unwrap().value, Value::Str("yes".into()));
        assert_eq!(n.get("b").unwrap().value, Value::Str("3306".into()));
        assert_eq!(n.get("c").unwrap().value, Value::Str("true\n".into()));
    }

    #[test]
    fn merge_keys_and_duplicates() {
        let n = load("base: &b\n  x: 1\n  y: 2\nc:\n  y: 0\n  <<: *b\n  z: 3\nd: 1\nd: 2\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("y").unwrap().value, Value::Int(2));
        assert_eq!(c.get("x").unwrap().value, Value::Int(1));
        assert_eq!(c.get("z").unwrap().value, Value::Int(3));
        assert_eq!(n.get("d").unwrap().value, Value::Int(2));
        let keys: Vec<_> = n
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.name.clone())
            .collect();
        assert_eq!(keys, ["base", "c", "d"]);
    }

    #[test]
    fn merge_key_list_earlier_wins() {
        let n = load("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().value, Value::Int(1));
        assert_eq!(c.get("y").unwrap().value, Value::Int(2));
    }

    #[test]
    fn positions_crlf_and_no_final_newline() {
        let n = load("service: app\r\nservers:\r\n  - 1.1.1.1\r\nimage: x");
        let s = n.get("servers").unwrap().as_seq().unwrap();
        assert_eq!((s[0].span.line, s[0].span.col), (3, 5));
        assert_eq!(n.get("image").unwrap().as_str(), Some("x"));
    }

    #[test]
    fn line_map_is_applied() {
        let n = parse("a: 1\nb: 2\n", "f.yml", Some(&[3, 7]))
            .unwrap()
            .unwrap();
        assert_eq!(n.get("b").unwrap().span.line, 7);
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n", "f.yml", None).unwrap_err();
        assert_eq!(&*e.span.file, "f.yml");
        assert!(e.span.line >= 1);
    }

    #[test]
    fn first_document_only_and_empty() {
        assert!(parse("", "f", None).unwrap().is_none());
        let n = load("a: 1\n---\nb: 2\n");
        assert!(n.get("b").is_none());
    }

    #[test]
    fn ruby_float_format() {
        assert_eq!(ruby_float(1.0), "1.0");
        assert_eq!(ruby_float(0.5), "0.5");
        assert_eq!(ruby_float(1e20), "1.0e+20");
    }
}
