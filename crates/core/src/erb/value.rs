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
    /// A regular expression: its source as Ruby keeps it, and its flags (`i`, `m`, `x`).
    Regex(String, String),
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

    /// How Ruby names a value in "no implicit conversion of X into String".
    pub(super) fn conversion_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            other => other.class_name(),
        }
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
            Value::Regex(..) => "Regexp",
            Value::Env | Value::Main => "Object",
            Value::Const(_) => "Module",
            Value::Exception { .. } => "Exception",
        }
    }

    /// `to_s`.
    pub(super) fn to_s(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Str(s) | Value::Sym(s) | Value::Const(s) => s.clone(),
            Value::Regex(source, flags) => super::pattern::to_s(source, flags),
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
                            || (c.is_ascii_alphanumeric() || !c.is_ascii())
                                && !(i == 0 && c.is_ascii_digit())
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
            Value::Regex(source, flags) => super::pattern::inspect(source, flags),
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

    /// Ruby's `<=>` for the values `sort` can order: numbers, strings (bytewise) and arrays
    /// (element by element).
    pub(super) fn compare(&self, other: &Value) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            #[expect(
                clippy::cast_precision_loss,
                reason = "Ruby compares Integer and Float so"
            )]
            (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
            #[expect(
                clippy::cast_precision_loss,
                reason = "Ruby compares Integer and Float so"
            )]
            (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
            (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Value::Array(a), Value::Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.compare(y)? {
                        std::cmp::Ordering::Equal => {}
                        other => return Some(other),
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            _ => None,
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

/// Ruby's `Float#to_s` (`flo_to_s`): the shortest round-trip digits, fixed notation for
/// `1e-4 <= |f| < 1e16` (when no zero padding past 15 digits is needed), else `d.ddde+XX`.
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
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digs = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let decpt = exp.parse::<i64>().unwrap_or(0) + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    let fixed = if decpt > 0 {
        decpt <= 16 && (decpt < digs || decpt <= 15)
    } else {
        decpt > -4
    };
    if fixed {
        if decpt >= digs {
            let zeros = usize::try_from(decpt - digs).unwrap_or(0);
            format!("{sign}{digits}{}.0", "0".repeat(zeros))
        } else if decpt > 0 {
            let point = usize::try_from(decpt).unwrap_or(0);
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        } else {
            let zeros = usize::try_from(-decpt).unwrap_or(0);
            format!("{sign}0.{}{digits}", "0".repeat(zeros))
        }
    } else {
        let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
        let e = decpt - 1;
        let esign = if e < 0 { "-" } else { "+" };
        format!("{sign}{}.{rest}e{esign}{:02}", &digits[..1], e.abs())
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
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
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
