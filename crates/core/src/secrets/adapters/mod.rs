//! Vault adapters: each wraps a vault's CLI exactly as Kamal 2.11's `Kamal::Secrets::Adapters`
//! does (same invocations, same output parsing, same messages), through an injected
//! [`Runner`]. Invocations are argument vectors rather than shell strings, so names are never
//! re-parsed by a shell.

mod aws;
mod bitwarden;
mod bitwarden_sm;
mod doppler;
mod enpass;
mod gcp;
mod last_pass;
mod one_password;
mod passbolt;

use serde_json::Value;

use super::EnvLookup;
use super::error::SecretsError;
use super::json::SecretMap;
use super::runner::{Invocation, Output, Runner, Stderr};
use super::shell::inspect;

/// A vault adapter, named as `secrets fetch --adapter` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    OnePassword,
    Bitwarden,
    BitwardenSecretsManager,
    AwsSecretsManager,
    GcpSecretManager,
    Doppler,
    LastPass,
    Enpass,
    Passbolt,
    /// Kamal's test adapter: each name reversed, `LPAREN`/`RPAREN` turned into parentheses.
    Test,
}

/// What an adapter may use: the runner for its CLI and the process environment.
#[derive(Clone, Copy)]
pub struct AdapterContext<'a> {
    pub runner: &'a dyn Runner,
    pub env: &'a dyn EnvLookup,
}

impl std::fmt::Debug for AdapterContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdapterContext")
    }
}

impl Adapter {
    /// `Kamal::Secrets::Adapters.lookup`: the aliases `1password`, `lastpass`, `gcp` and
    /// `bitwarden-sm`, otherwise the camelised name must be an adapter class.
    pub fn lookup(name: &str) -> Result<Self, SecretsError> {
        let name = match name.to_lowercase().as_str() {
            "1password" => "one_password".to_owned(),
            "lastpass" => "last_pass".to_owned(),
            "gcp" => "gcp_secret_manager".to_owned(),
            "bitwarden-sm" => "bitwarden_secrets_manager".to_owned(),
            _ => name.to_owned(),
        };
        match camelize(&name).as_str() {
            "OnePassword" => Ok(Self::OnePassword),
            "Bitwarden" => Ok(Self::Bitwarden),
            "BitwardenSecretsManager" => Ok(Self::BitwardenSecretsManager),
            "AwsSecretsManager" => Ok(Self::AwsSecretsManager),
            "GcpSecretManager" => Ok(Self::GcpSecretManager),
            "Doppler" => Ok(Self::Doppler),
            "LastPass" => Ok(Self::LastPass),
            "Enpass" => Ok(Self::Enpass),
            "Passbolt" => Ok(Self::Passbolt),
            "Test" => Ok(Self::Test),
            _ => Err(SecretsError::UnknownAdapter(name)),
        }
    }

    /// Whether `--account` must be given.
    pub fn requires_account(self) -> bool {
        matches!(
            self,
            Self::OnePassword
                | Self::Bitwarden
                | Self::GcpSecretManager
                | Self::LastPass
                | Self::Test
        )
    }

    /// `Adapter#fetch`: checks the account and the CLI, signs in, then fetches `names`
    /// (each prefixed with `from/` where the adapter does that).
    pub fn fetch(
        self,
        names: &[String],
        account: Option<&str>,
        from: Option<&str>,
        ctx: AdapterContext<'_>,
    ) -> Result<SecretMap, SecretsError> {
        if self.requires_account() && account.is_none_or(is_blank) {
            return Err(SecretsError::MissingAccount);
        }
        let account_text = account.unwrap_or_default();
        match self {
            Self::OnePassword => one_password::fetch(names, account_text, from, ctx),
            Self::Bitwarden => bitwarden::fetch(names, account_text, from, ctx),
            Self::BitwardenSecretsManager => bitwarden_sm::fetch(names, from, ctx),
            Self::AwsSecretsManager => aws::fetch(names, account, from, ctx),
            Self::GcpSecretManager => gcp::fetch(names, account_text, from, ctx),
            Self::Doppler => doppler::fetch(names, from, ctx),
            Self::LastPass => last_pass::fetch(names, account_text, from, ctx),
            Self::Enpass => enpass::fetch(names, from, ctx),
            Self::Passbolt => passbolt::fetch(names, from, ctx),
            Self::Test => Ok(test_fetch(names, from)),
        }
    }
}

fn test_fetch(names: &[String], from: Option<&str>) -> SecretMap {
    let mut results = SecretMap::new();
    for name in prefixed(names, from) {
        let value: String = name
            .replace("LPAREN", "(")
            .replace("RPAREN", ")")
            .chars()
            .rev()
            .collect();
        results.insert(name, Value::String(value));
    }
    results
}

/// `ActiveSupport`'s `camelize`: the leading `[a-z\d]*` run capitalised, then each `_` and the
/// alphanumeric run after it replaced by that run capitalised.
fn camelize(name: &str) -> String {
    fn capitalize(word: &str) -> String {
        let mut chars = word.chars();
        chars.next().map_or_else(String::new, |first| {
            first
                .to_uppercase()
                .chain(chars.as_str().to_lowercase().chars())
                .collect()
        })
    }
    let mut out = String::new();
    for (i, part) in name.split('_').enumerate() {
        let run = if i == 0 {
            part.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
                .unwrap_or(part.len())
        } else {
            part.find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(part.len())
        };
        out.push_str(&capitalize(&part[..run]));
        out.push_str(&part[run..]);
    }
    out
}

/// Rails' `blank?` for a string: empty or whitespace only.
pub(crate) fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// `prefixed_secrets`: `from/name` for each name, or the names as they are.
pub(crate) fn prefixed(names: &[String], from: Option<&str>) -> Vec<String> {
    names
        .iter()
        .map(|name| match from {
            Some(from) => format!("{from}/{name}"),
            None => name.clone(),
        })
        .collect()
}

/// Ruby's `String#split(sep)`: empty fields kept except at the end; `""` gives no fields.
pub(crate) fn ruby_split<'a>(text: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts: Vec<&str> = text.split(sep).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Ruby's `Array#inspect` for strings: `["a", "b"]`.
pub(crate) fn inspect_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| inspect(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Runs `program args...`; a program that cannot be started counts as a failed run.
pub(crate) fn run(ctx: AdapterContext<'_>, invocation: &Invocation) -> Output {
    ctx.runner
        .run(invocation)
        .unwrap_or_else(|_| Output::failed(127, ""))
}

/// `<cli> --version 2> /dev/null` succeeded.
pub(crate) fn cli_installed(ctx: AdapterContext<'_>, program: &str, args: &[&str]) -> bool {
    run(
        ctx,
        &Invocation::new(program, args.iter().copied()).stderr(Stderr::Discard),
    )
    .success()
}

/// Parses CLI output as JSON, naming the command (never the output) on failure.
pub(crate) fn parse_json(output: &Output, command: &str) -> Result<Value, SecretsError> {
    serde_json::from_str(output.stdout.expose().trim())
        .map_err(|e| SecretsError::json(format!("the output of `{command}`"), &e))
}

/// Ruby's truthiness for a JSON value: anything but `null` and `false`.
pub(crate) fn truthy(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Null | Value::Bool(false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_with_aliases_and_camelize() {
        assert_eq!(Adapter::lookup("1password").unwrap(), Adapter::OnePassword);
        assert_eq!(Adapter::lookup("1Password").unwrap(), Adapter::OnePassword);
        assert_eq!(
            Adapter::lookup("one_password").unwrap(),
            Adapter::OnePassword
        );
        assert_eq!(Adapter::lookup("LastPass").unwrap(), Adapter::LastPass);
        assert_eq!(Adapter::lookup("lastpass").unwrap(), Adapter::LastPass);
        assert_eq!(Adapter::lookup("gcp").unwrap(), Adapter::GcpSecretManager);
        assert_eq!(
            Adapter::lookup("bitwarden-sm").unwrap(),
            Adapter::BitwardenSecretsManager
        );
        assert_eq!(
            Adapter::lookup("aws_secrets_manager").unwrap(),
            Adapter::AwsSecretsManager
        );
        assert_eq!(
            Adapter::lookup("AwsSecretsManager").unwrap(),
            Adapter::AwsSecretsManager
        );
        assert_eq!(
            Adapter::lookup("aws_SECRETS_manager").unwrap(),
            Adapter::AwsSecretsManager
        );
        assert_eq!(Adapter::lookup("test").unwrap(), Adapter::Test);
        assert_eq!(
            Adapter::lookup("aws").unwrap_err().to_string(),
            "Unknown secrets adapter: aws"
        );
        assert_eq!(Adapter::lookup("GCP").unwrap(), Adapter::GcpSecretManager);
        assert_eq!(
            Adapter::lookup("AWS").unwrap_err().to_string(),
            "Unknown secrets adapter: AWS"
        );
    }

    #[test]
    fn ruby_helpers() {
        assert_eq!(ruby_split("a//b//", "/"), ["a", "", "b"]);
        assert!(ruby_split("", "/").is_empty());
        assert_eq!(
            inspect_list(&["a".to_owned(), "b\"".to_owned()]),
            r#"["a", "b\""]"#
        );
        assert_eq!(camelize("one_password"), "OnePassword");
    }
}
