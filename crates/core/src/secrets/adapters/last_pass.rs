//! `LastPass` through `lpass`: `lpass status --color never`, `lpass login ACCOUNT` when not
//! logged in as that account, then one `lpass show NAMES... --json`. Keys are `fullname`; any
//! name `LastPass` does not return is an error.

use serde_json::Value;

use super::{AdapterContext, cli_installed, inspect_list, parse_json, prefixed, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::SecretMap;
use crate::secrets::runner::Invocation;

pub(super) fn fetch(
    names: &[String],
    account: &str,
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "lpass", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("LastPass"));
    }
    let status = run(
        ctx,
        &Invocation::new("lpass", ["status", "--color", "never"]),
    );
    if status.stdout.expose().trim() != format!("Logged in as {account}.") {
        // Interactive: prompts for the master password.
        if !run(ctx, &Invocation::new("lpass", ["login", account])).success() {
            return Err(SecretsError::Adapter(
                "Failed to login to LastPass".to_owned(),
            ));
        }
    }
    let secrets = prefixed(names, from);
    let mut args: Vec<String> = vec!["show".to_owned()];
    args.extend(secrets.iter().cloned());
    args.push("--json".to_owned());
    let output = run(ctx, &Invocation::new("lpass", args));
    if !output.success() {
        return Err(SecretsError::Adapter(format!(
            "Could not read {} from LastPass",
            inspect_list(&secrets)
        )));
    }
    let items = parse_json(&output, "lpass show")?;
    let mut results = SecretMap::new();
    for item in items.as_array().map_or(&[][..], Vec::as_slice) {
        let name = item
            .get("fullname")
            .and_then(Value::as_str)
            .unwrap_or_default();
        results.insert(name, item.get("password").cloned().unwrap_or(Value::Null));
    }
    let missing: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !results.contains_key(s))
        .collect();
    if !missing.is_empty() {
        return Err(SecretsError::Adapter(format!(
            "Could not find {} in LastPass",
            missing.join(", ")
        )));
    }
    Ok(results)
}
