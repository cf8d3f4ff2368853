//! Ruby values for the ERB interpreter, with Ruby's `to_s`, `inspect`, truthiness, equality and
//! the json gem's `to_json`.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Sym(String),
    Array(Vec<Value>),
    Hash(Vec<(Value, Value)>),
    Range(Box<Value>, Box<Value>, bool),
    /// The `ENV` object.
    Env,
    /// A module or class the interpreter knows (`File`, `Kamal::Utils`, `String`, ...).
    Const(String),
    /// The top-level `self` (`main`).
    Main,
    /// A rescued exception (`rescue => e`).
    Exception {
        class: String,
        message: String,
    },
}

impl Value {
    pub(super) fn truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    pub(super) fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }

    /// Ruby's class name, for messages and `is_a?`.
    pub(super) fn class_name(&self) -> &'static str {
        match self {
            Value::Nil => "NilClass",
            Value::Bool(true) => "TrueClass",
            Value::Bool(false) => "FalseClass",
            Value::Int(_) => "Integer",
            Value::Float(_) => "Float",
            Value::Str(_) => "String",
            Value::Sym(_) => "Symbol",
            Value::Array(_) => "Array",
            Value::Hash(_) => "Hash",
            Value::Range(..) => "Range",
            Value::Env | Value::Main => "Object",
            Value::Const(_) => "Module",
            Value::Exception { .. } => "Exception",
        }
    }

    /// How Ruby names the receiver in a `NoMethodError` (Ruby 3.3: "for nil", "for an instance
    /// of String").
    pub(super) fn describe(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Bool(b) => b.to_string(),
            Value::Main => "main:Object".into(),
            Value::Const(name) => format!("module {name}"),
            other => format!("an instance of {}", other.class_name()),
        }
    }

    /// `to_s`.
    pub(super) fn to_s(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Str(s) | Value::Sym(s) | Value::Const(s) => s.clone(),
            Value::Exception { message, .. } => message.clone(),
            Value::Main => "main".into(),
            Value::Env => "ENV".into(),
            other => other.inspect(),
        }
    }

    /// `inspect` (Ruby 3.3 formats).
    pub(super) fn inspect(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => float_to_s(*f),
            Value::Str(s) => inspect_str(s),
            Value::Sym(s) => {
                if !s.is_empty()
                    && s.chars().enumerate().all(|(i, c)| {
                        c == '_'
                            || c.is_alphanumeric() && !(i == 0 && c.is_ascii_digit())
                            || (i == s.chars().count() - 1 && matches!(c, '?' | '!' | '='))
                    })
                {
                    format!(":{s}")
                } else {
                    format!(":{}", inspect_str(s))
                }
            }
            Value::Array(items) => {
                let inner: Vec<String> = items.iter().map(Value::inspect).collect();
                format!("[{}]", inner.join(", "))
            }
            Value::Hash(pairs) => {
                if pairs.is_empty() {
                    return "{}".into();
                }
                let inner: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}=>{}", k.inspect(), v.inspect()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            Value::Range(a, b, excl) => {
                format!(
                    "{}{}{}",
                    a.inspect(),
                    if *excl { "..." } else { ".." },
                    b.inspect()
                )
            }
            Value::Env => "ENV".into(),
            Value::Const(name) => name.clone(),
            Value::Main => "main".into(),
            Value::Exception { class, message } => format!("#<{class}: {message}>"),
        }
    }

    /// The json gem's `to_json` / `JSON.generate`.
    pub(super) fn to_json(&self) -> Option<String> {
        Some(match self {
            Value::Nil => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) if f.is_finite() => float_to_s(*f),
            Value::Str(s) | Value::Sym(s) => json_str(s),
            Value::Array(items) => {
                let inner: Option<Vec<String>> = items.iter().map(Value::to_json).collect();
                format!("[{}]", inner?.join(","))
            }
            Value::Hash(pairs) => {
                let mut inner = Vec::new();
                for (k, v) in pairs {
                    inner.push(format!("{}:{}", json_str(&k.to_s()), v.to_json()?));
                }
                format!("{{{}}}", inner.join(","))
            }
            _ => return None,
        })
    }

    /// Ruby `==`.
    pub(super) fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            #[expect(
                clippy::cast_precision_loss,
                reason = "Ruby compares Integer and Float this way"
            )]
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                (*a as f64 - *b).abs() == 0.0
            }
            (Value::Float(a), Value::Float(b)) => (a - b).abs() == 0.0,
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (Value::Hash(a), Value::Hash(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k.equals(k2) && v.equals(v2)))
            }
            _ => self == other,
        }
    }

    /// `ActiveSupport`'s `blank?`.
    pub(super) fn blank(&self) -> bool {
        match self {
            Value::Nil | Value::Bool(false) => true,
            Value::Str(s) => s.chars().all(char::is_whitespace),
            Value::Array(a) => a.is_empty(),
            Value::Hash(h) => h.is_empty(),
            _ => false,
        }
    }
}

/// Ruby's `Float#to_s`.
pub(super) fn float_to_s(f: f64) -> String {
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
    if abs == 0.0 || (1e-4..1e16).contains(&abs) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

/// Ruby's `String#inspect` for UTF-8 strings.
pub(super) fn inspect_str(s: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            '\u{7f}' => out.push_str("\\x7F"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The json gem's string encoding (not script-safe: `/` and U+2028 stay as they are).
pub(super) fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
