//! Enpass through `enpass-cli -json -vault VAULT show TITLES...`, offline and without an
//! account. `--from` is the vault path. Keys are `TITLE` or `TITLE/LABEL`; a key returned twice
//! is an error.

use serde_json::Value;

use super::{AdapterContext, is_blank, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::SecretMap;
use crate::secrets::runner::{Invocation, Stderr};

pub(super) fn fetch(
    names: &[String],
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    let version = Invocation::new("enpass-cli", ["version"]).stderr(Stderr::Discard);
    if !run(ctx, &version).success() {
        return Err(SecretsError::CliNotInstalled("Enpass"));
    }
    let mut titles: Vec<String> = Vec::new();
    for secret in names {
        let title = match secret.rsplit_once('/') {
            Some((key, _)) if !key.is_empty() => key,
            Some((_, value)) => value,
            None => secret.as_str(),
        };
        if !titles.iter().any(|t| t == title) {
            titles.push(title.to_owned());
        }
    }
    let mut args: Vec<String> = vec![
        "-json".to_owned(),
        "-vault".to_owned(),
        from.unwrap_or_default().to_owned(),
        "show".to_owned(),
    ];
    args.extend(titles.iter().cloned());
    let output = run(ctx, &Invocation::new("enpass-cli", args));
    if !output.success() {
        // Kamal does not check the exit status and fails parsing the output instead.
        return Err(SecretsError::Adapter(format!(
            "Could not read {} from Enpass",
            titles.join(", ")
        )));
    }
    let items: Value = serde_json::from_str(output.stdout.expose().trim())
        .map_err(|e| SecretsError::json("the output of `enpass-cli show`", &e))?;
    let mut results = SecretMap::new();
    for item in items.as_array().map_or(&[][..], Vec::as_slice) {
        let text = |key: &str| item.get(key).and_then(Value::as_str);
        let (Some(title), Some(password)) = (text("title"), text("password")) else {
            continue;
        };
        if is_blank(password) {
            continue;
        }
        let key = match text("label") {
            Some(label) if !label.is_empty() && !title.is_empty() => format!("{title}/{label}"),
            Some(label) if !label.is_empty() => label.to_owned(),
            _ => title.to_owned(),
        };
        if names.iter().any(|n| n == title || *n == key) {
            if results.contains_key(&key) {
                return Err(SecretsError::Adapter(format!(
                    "{key} is present more than once"
                )));
            }
            results.insert(key, Value::String(password.to_owned()));
        }
    }
    Ok(results)
}
