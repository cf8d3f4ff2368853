//! What `config` prints: Kamal's `Configuration#to_h` as a YAML tree (same keys, same shapes,
//! `:symbol` keys included) and a YAML emitter whose output parses back to the same value.

use std::fmt::Write as _;

use super::model::Config;
use super::yaml::{Key, Node, Span, Value, resolve_scalar, ruby_float};

fn key(name: &str) -> Key {
    Key {
        name: name.to_string(),
        span: Span::synthetic(),
    }
}

fn str_node(s: &str) -> Node {
    Node::synthetic(Value::Str(s.to_string()))
}

fn seq(items: impl IntoIterator<Item = String>) -> Node {
    Node::synthetic(Value::Seq(
        items.into_iter().map(|s| str_node(&s)).collect(),
    ))
}

fn empty_map() -> Node {
    Node::synthetic(Value::Map(Vec::new()))
}

impl Config {
    /// Kamal's `kamal config` output as a tree (`Kamal::Configuration#to_h`), for `version`.
    /// `ssh_options.key_data` lists the entries as written (secret names), never secret values.
    pub fn kamal_config_view(&self, version: &str) -> Node {
        let mut out: Vec<(Key, Node)> = Vec::new();
        let roles = if self.servers_is_list {
            vec!["web".to_string()]
        } else {
            self.role_names()
        };
        out.push((key(":roles"), seq(roles)));
        out.push((key(":hosts"), seq(self.all_hosts())));
        if let Some(primary) = self.primary_host() {
            out.push((key(":primary_host"), str_node(primary)));
        }
        out.push((key(":version"), str_node(version)));
        out.push((key(":repository"), str_node(&self.repository())));
        out.push((
            key(":absolute_image"),
            str_node(&self.absolute_image(version)),
        ));
        out.push((
            key(":service_with_version"),
            str_node(&self.service_with_version(version)),
        ));
        out.push((key(":volume_args"), seq(self.volume_args())));
        out.push((key(":ssh_options"), self.ssh_options_view()));
        out.push((
            key(":sshkit"),
            self.sshkit.raw.clone().unwrap_or_else(empty_map),
        ));
        out.push((key(":builder"), self.builder.raw.clone()));
        if let Some(accessories) = self.raw.get("accessories").filter(|n| !n.is_null()) {
            out.push((key(":accessories"), accessories.clone()));
        }
        out.push((key(":logging"), seq(self.logging.args())));
        Node::synthetic(Value::Map(out))
    }

    fn ssh_options_view(&self) -> Node {
        let raw = self.ssh.raw.clone().unwrap_or_else(empty_map);
        let fetch = |k: &str, default: Node| -> Option<Node> {
            match raw.get(k) {
                Some(n) if n.is_null() => None,
                Some(n) => Some(n.clone()),
                None if default.is_null() => None,
                None => Some(default),
            }
        };
        let null = || Node::synthetic(Value::Null);
        let mut out: Vec<(Key, Node)> = Vec::new();
        let mut put = |name: &str, v: Option<Node>| {
            if let Some(v) = v {
                out.push((key(name), v));
            }
        };
        put(":user", fetch("user", str_node("root")));
        put(":port", fetch("port", Node::synthetic(Value::Int(22))));
        let proxy = if let Some(p) = raw.get("proxy").filter(|n| n.is_truthy()) {
            let p = p.to_ruby_string().unwrap_or_default();
            let jump = if p.contains('@') {
                p
            } else {
                format!("root@{p}")
            };
            Some(Node {
                value: Value::Map(vec![(key("jump_proxies"), str_node(&jump))]),
                span: Span::synthetic(),
                tag: Some("!ruby/object:Net::SSH::Proxy::Jump".into()),
            })
        } else {
            raw.get("proxy_command")
                .filter(|n| n.is_truthy())
                .map(|c| Node {
                    value: Value::Map(vec![
                        (
                            key("command_line_template"),
                            str_node(&c.to_ruby_string().unwrap_or_default()),
                        ),
                        (key("command_line"), null()),
                        (key("timeout"), Node::synthetic(Value::Int(60))),
                    ]),
                    span: Span::synthetic(),
                    tag: Some("!ruby/object:Net::SSH::Proxy::Command".into()),
                })
        };
        put(":proxy", proxy);
        put(":keepalive", Some(Node::synthetic(Value::Bool(true))));
        put(":keepalive_interval", Some(Node::synthetic(Value::Int(30))));
        put(":keys_only", fetch("keys_only", null()));
        put(":keys", fetch("keys", null()));
        put(":key_data", fetch("key_data", null()));
        put(":config", fetch("config", null()));
        put(
            ":log_level",
            Some(
                raw.get("log_level")
                    .cloned()
                    .unwrap_or_else(|| Node::synthetic(Value::Symbol("fatal".into()))),
            ),
        );
        Node::synthetic(Value::Map(out))
    }
}

/// The tree as JSON (maps keep their order only as far as `serde_json` does; symbols are written
/// `:name`, dates as text, non-finite floats as strings), for machine-readable output.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| J::String(ruby_float(*f)), J::Number)
        }
        Value::Str(s) | Value::Date(s) => J::String(s.clone()),
        Value::Symbol(s) => J::String(format!(":{s}")),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// Kamal's `Utils.argumentize` over map entries: `--opt k="v"`, `--opt k=false`, or `--opt k`.
pub fn argumentize(argument: &str, entries: &[(String, Node)]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in entries {
        out.push(argument.to_string());
        if v.is_present() {
            out.push(format!("{k}={}", escape_shell_value(&ruby_to_s(v))));
        } else if matches!(v.value, Value::Bool(false)) {
            out.push(format!("{k}=false"));
        } else {
            out.push(k.clone());
        }
    }
    out
}

fn ruby_to_s(node: &Node) -> String {
    node.to_ruby_string().unwrap_or_else(|| inspect(node))
}

/// Ruby's `inspect` of a collection (what `to_s` gives for arrays and hashes).
fn inspect(node: &Node) -> String {
    match &node.value {
        Value::Seq(items) => format!(
            "[{}]",
            items.iter().map(inspect).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{:?} => {}", k.name, inspect(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Str(s) => ruby_dump(s),
        Value::Symbol(s) => format!(":{s}"),
        Value::Null => "nil".into(),
        _ => node.to_ruby_string().unwrap_or_default(),
    }
}

/// Kamal's `Utils.escape_shell_value`, shared with the command builders.
pub use crate::cmd::escape_shell_value;

/// Ruby's `String#dump` for ASCII text.
fn ruby_dump(s: &str) -> String {
    let mut out = String::from("\"");
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            '\u{8}' => out.push_str("\\b"),
            '\u{7}' => out.push_str("\\a"),
            '\u{1b}' => out.push_str("\\e"),
            '#' if matches!(chars.get(i + 1), Some('{' | '$' | '@')) => out.push_str("\\#"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02X}", u32::from(*c));
            }
            c if !c.is_ascii() => {
                let _ = write!(out, "\\u{:04X}", u32::from(*c));
            }
            c => out.push(*c),
        }
    }
    out.push('"');
    out
}

/// Emits a tree as a YAML document (block style, `---` header) that parses back to the same value.
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::from("---");
    match &node.value {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, 0, &mut out);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            emit_seq(s, 0, &mut out);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(node));
            out.push('\n');
        }
    }
    out
}

fn is_block(node: &Node) -> bool {
    match &node.value {
        Value::Map(m) => !m.is_empty(),
        Value::Seq(s) => !s.is_empty(),
        _ => false,
    }
}

fn emit_map(entries: &[(Key, Node)], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in entries {
        let _ = write!(out, "{pad}{}:", key_text(&k.name));
        emit_value(v, indent, out, true);
    }
}

fn emit_value(v: &Node, indent: usize, out: &mut String, in_map: bool) {
    if let Some(tag) = &v.tag {
        let _ = write!(out, " {tag}");
    }
    match &v.value {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, indent + 2, out);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            emit_seq(s, if in_map { indent } else { indent + 2 }, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

fn emit_seq(items: &[Node], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        let _ = write!(out, "{pad}-");
        if is_block(item) || item.tag.is_some() {
            emit_value(item, indent, out, false);
        } else {
            out.push(' ');
            out.push_str(&scalar(item));
            out.push('\n');
        }
    }
}

fn key_text(name: &str) -> String {
    let symbol_ok = name.strip_prefix(':').is_some_and(|sym| {
        plain_ok(sym) && resolve_scalar(name, true, None) == Value::Symbol(sym.to_string())
    });
    if symbol_ok {
        return name.to_string();
    }
    if name != "<<"
        && plain_ok(name)
        && resolve_scalar(name, true, None) == Value::Str(name.to_string())
    {
        name.to_string()
    } else {
        quote(name)
    }
}

fn scalar(node: &Node) -> String {
    match &node.value {
        Value::Null => "~".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => ".nan".into(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 {
                ".inf".into()
            } else {
                "-.inf".into()
            }
        }
        Value::Float(f) => ruby_float(*f),
        Value::Date(d) => d.clone(),
        Value::Symbol(s) => {
            let text = format!(":{s}");
            if plain_ok(s) && resolve_scalar(&text, true, None) == Value::Symbol(s.clone()) {
                text
            } else {
                format!("!ruby/symbol {}", quote(s))
            }
        }
        Value::Str(s) => {
            if plain_ok(s) && resolve_scalar(s, true, None) == Value::Str(s.clone()) {
                s.clone()
            } else {
                quote(s)
            }
        }
        Value::Seq(_) => "[]".into(),
        Value::Map(_) => "{}".into(),
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        return false;
    }
    if s.ends_with(char::is_whitespace) || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(":\t") {
        return false;
    }
    s.chars().all(|c| {
        !c.is_control() && c != '\u{feff}' && c != '\u{85}' && c != '\u{2028}' && c != '\u{2029}'
    })
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{85}' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;

    #[test]
    fn shell_escaping_matches_ruby() {
        assert_eq!(escape_shell_value("10m"), "\"10m\"");
        assert_eq!(escape_shell_value("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            escape_shell_value("$HOME and ${HOME}"),
            "\"\\$HOME and ${HOME}\""
        );
        assert_eq!(escape_shell_value("`x`"), "\"\\`x\\`\"");
        assert_eq!(escape_shell_value("héllo"), "\"h\"é\"llo\"");
        assert_eq!(escape_shell_value("#{x}"), "\"\\#{x}\"");
    }

    #[test]
    fn json_conversion() {
        let node = parse("a: [1, 1.5, :s, ~, yes, x]\n", "t", None)
            .unwrap()
            .unwrap();
        assert_eq!(
            to_json(&node),
            serde_json::json!({"a": [1, 1.5, ":s", null, true, "x"]})
        );
    }

    #[test]
    fn emitter_round_trips() {
        let text = "a: [1, '1', yes, 'yes', ~, '', ' x', 'a: b', '#c', ':sym', :sym, 1.5, '1.5', \"l\\nm\", '-x', '22:22', 2024-01-01]\n\
                    b: {c: {d: []}, e: {}}\n\
                    ':k': 1\n\
                    '80': x\n";
        let node = parse(text, "t", None).unwrap().unwrap();
        let emitted = to_yaml(&node);
        let back = parse(&emitted, "t", None).unwrap().unwrap();
        assert!(node.same_value(&back), "{emitted}");
    }
}
