//! The `secrets fetch`, `secrets extract` and `secrets print` commands as pure functions, and
//! the in-process evaluation of `$(kamal secrets ...)` / `$(dhow secrets ...)` lines, which
//! Kamal runs by re-entering its own CLI with `--inline` appended.

use serde_json::Value;

use super::EnvLookup;
use super::adapters::{Adapter, AdapterContext};
use super::error::SecretsError;
use super::json::{OrderedObject, SecretMap};
use super::runner::Runner;
use super::shell::shellescape;
use crate::Secret;

/// The arguments of `secrets fetch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRequest {
    pub adapter: String,
    pub account: Option<String>,
    pub from: Option<String>,
    pub names: Vec<String>,
}

/// `secrets fetch`: looks the adapter up, checks `--account`, and fetches through its CLI.
pub fn fetch(
    request: &FetchRequest,
    env: &dyn EnvLookup,
    runner: &dyn Runner,
) -> Result<SecretMap, SecretsError> {
    let adapter = Adapter::lookup(&request.adapter)?;
    adapter.fetch(
        &request.names,
        request.account.as_deref(),
        request.from.as_deref(),
        AdapterContext { runner, env },
    )
}

/// What `secrets fetch` prints: the JSON object, shell-escaped with `--inline` (so that
/// `$(kamal secrets extract NAME ${SECRETS})` receives it as one word).
pub fn fetch_output(secrets: &SecretMap, inline: bool) -> Secret<String> {
    let json = secrets.to_json();
    if inline {
        Secret::new(shellescape(json.expose()))
    } else {
        json
    }
}

/// `secrets extract NAME JSON`: the value of key `NAME`, or of the first key ending in `/NAME`.
pub fn extract(name: &str, json: &str) -> Result<Secret<String>, SecretsError> {
    let object = OrderedObject::parse(json).map_err(|e| SecretsError::json("the secrets", &e))?;
    let present = |v: &Value| !matches!(v, Value::Null | Value::Bool(false));
    let value = object
        .0
        .iter()
        .find(|(k, v)| k == name && present(v))
        .or_else(|| {
            let suffix = format!("/{name}");
            object.0.iter().find(|(k, _)| k.ends_with(&suffix))
        })
        .map(|(_, v)| v)
        .filter(|v| !v.is_null());
    match value {
        Some(Value::String(text)) => Ok(Secret::new(text.clone())),
        Some(other) => Ok(Secret::new(other.to_string())),
        None => Err(SecretsError::NotInJson(name.to_owned())),
    }
}

/// Runs the words after `kamal`/`dhow` of a `$(... secrets ...)` line (`secrets fetch ...`,
/// `secrets extract ...`) and returns what `--inline` returns.
pub(crate) fn run_inline(
    words: &[String],
    env: &dyn EnvLookup,
    runner: &dyn Runner,
) -> Result<String, SecretsError> {
    let (Some(group), Some(command)) = (words.first(), words.get(1)) else {
        return Err(SecretsError::Usage(
            "expected `secrets fetch|extract ...`".to_owned(),
        ));
    };
    if group != "secrets" {
        return Err(SecretsError::Usage(format!("unknown command `{group}`")));
    }
    let args = parse_options(&words[2..])?;
    match command.as_str() {
        "fetch" => {
            args.only(&["adapter", "account", "from", "inline"])?;
            let Some(adapter) = args.value("adapter") else {
                return Err(SecretsError::Usage(
                    "No value provided for required options '--adapter'".to_owned(),
                ));
            };
            let request = FetchRequest {
                adapter: adapter.to_owned(),
                account: args.value("account").map(str::to_owned),
                from: args.value("from").map(str::to_owned),
                names: args.positional.clone(),
            };
            let adapter = Adapter::lookup(&request.adapter)?;
            if adapter.requires_account()
                && request
                    .account
                    .as_deref()
                    .is_none_or(super::adapters::is_blank)
            {
                return Err(SecretsError::MissingAccount);
            }
            Ok(fetch_output(&fetch(&request, env, runner)?, true).into_inner())
        }
        "extract" => {
            args.only(&["inline"])?;
            let [name, json] = args.positional.as_slice() else {
                return Err(SecretsError::Usage(
                    "`secrets extract` takes two arguments: NAME and the JSON from `secrets fetch`"
                        .to_owned(),
                ));
            };
            Ok(extract(name, json)?.into_inner())
        }
        "print" => Err(SecretsError::RecursivePrint),
        other => Err(SecretsError::Usage(format!(
            "Could not find command \"{other}\" in \"secrets\" namespace."
        ))),
    }
}

/// Thor-style options: `--name value`, `--name=value`, `-a value`, `-avalue`, boolean
/// `--inline`, and positional words anywhere.
#[derive(Debug, Default)]
struct Options {
    named: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

impl Options {
    fn value(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn only(&self, allowed: &[&str]) -> Result<(), SecretsError> {
        match self
            .named
            .iter()
            .find(|(n, _)| !allowed.contains(&n.as_str()))
        {
            Some((name, _)) => Err(SecretsError::Usage(format!(
                "Unknown switches \"--{name}\""
            ))),
            None => Ok(()),
        }
    }
}

fn parse_options(words: &[String]) -> Result<Options, SecretsError> {
    const VALUED: [&str; 3] = ["adapter", "account", "from"];
    let mut options = Options::default();
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        let (name, inline_value) = if let Some(long) = word.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (long.to_owned(), None),
            }
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let (flag, rest) = short.split_at(short.chars().next().map_or(0, char::len_utf8));
            let name = if flag == "a" {
                "adapter".to_owned()
            } else {
                flag.to_owned()
            };
            (
                name,
                (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_owned()),
            )
        } else {
            options.positional.push(word.clone());
            continue;
        };
        if name == "inline" || name == "no-inline" {
            options.named.push(("inline".to_owned(), None));
            continue;
        }
        let value = if VALUED.contains(&name.as_str()) {
            match inline_value {
                Some(value) => Some(value),
                None => match iter.next() {
                    Some(value) => Some(value.clone()),
                    None => {
                        return Err(SecretsError::Usage(format!(
                            "No value provided for option '--{name}'"
                        )));
                    }
                },
            }
        } else {
            inline_value
        };
        options.named.push((name, value));
    }
    Ok(options)
}
