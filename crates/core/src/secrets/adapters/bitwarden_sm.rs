//! Bitwarden Secrets Manager through `bws`: `bws project list` checks the access token; `all`
//! lists every secret, `PROJECT/all` the secrets of a project, anything else is a secret UUID
//! for `bws secret get`. Keys are the secrets' keys.

use serde_json::Value;

use super::{AdapterContext, cli_installed, parse_json, prefixed, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::SecretMap;
use crate::secrets::runner::Invocation;

pub(super) fn fetch(
    names: &[String],
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "bws", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("Bitwarden Secrets Manager"));
    }
    if !run(ctx, &Invocation::new("bws", ["project", "list"])).success() {
        return Err(SecretsError::Adapter(
            "Could not authenticate to Bitwarden Secrets Manager. Did you set a valid access token?"
                .to_owned(),
        ));
    }
    if names.is_empty() {
        return Err(SecretsError::Adapter(
            "You must specify what to retrieve from Bitwarden Secrets Manager".to_owned(),
        ));
    }
    let secrets = prefixed(names, from);
    let mut results = SecretMap::new();
    if let Some(list) = list_command(&secrets) {
        let output = run(ctx, &Invocation::new("bws", list));
        if !output.success() {
            return Err(SecretsError::Adapter(
                "Could not read secrets from Bitwarden Secrets Manager".to_owned(),
            ));
        }
        let items = parse_json(&output, "bws secret list")?;
        for item in items.as_array().map_or(&[][..], Vec::as_slice) {
            insert(&mut results, item);
        }
    } else {
        for uuid in &secrets {
            let output = run(
                ctx,
                &Invocation::new("bws", ["secret", "get", uuid.as_str()]),
            );
            if !output.success() {
                return Err(SecretsError::Adapter(format!(
                    "Could not read {uuid} from Bitwarden Secrets Manager"
                )));
            }
            insert(&mut results, &parse_json(&output, "bws secret get")?);
        }
    }
    Ok(results)
}

fn insert(results: &mut SecretMap, item: &Value) {
    let key = match item.get("key") {
        Some(Value::String(key)) => key.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    results.insert(key, item.get("value").cloned().unwrap_or(Value::Null));
}

/// `bws secret list [PROJECT]` for a single `all` or `PROJECT/all`.
fn list_command(secrets: &[String]) -> Option<Vec<String>> {
    let [only] = secrets else { return None };
    if only == "all" {
        return Some(vec!["secret".to_owned(), "list".to_owned()]);
    }
    let project = only.strip_suffix("/all")?;
    let project = project.split("/all").next().unwrap_or_default();
    Some(vec![
        "secret".to_owned(),
        "list".to_owned(),
        project.to_owned(),
    ])
}
