//! Google Secret Manager through `gcloud`: `gcloud auth login` when `gcloud auth list` is empty,
//! then `gcloud secrets versions access VERSION --secret=NAME ... --format=json` per secret, with
//! the payload base64-decoded. Names are `[PROJECT/]SECRET[/VERSION]`; keys are
//! `PROJECT/SECRET`. `--account` is `USER` or `USER|SA1,SA2` (an impersonation chain).

use base64::Engine as _;
use serde_json::Value;

use super::{AdapterContext, cli_installed, parse_json, prefixed, ruby_split, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::SecretMap;
use crate::secrets::runner::Invocation;

pub(super) fn fetch(
    names: &[String],
    account: &str,
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "gcloud", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("gcloud"));
    }
    if !logged_in(ctx)? {
        // Interactive: opens a browser or prints a URL and reads the code from the terminal.
        run(ctx, &Invocation::new("gcloud", ["auth", "login"]));
        if !logged_in(ctx)? {
            return Err(SecretsError::Adapter(
                "could not login to gcloud".to_owned(),
            ));
        }
    }
    let (user, service_account) = match account.split_once('|') {
        Some((user, chain)) => (user, Some(chain)),
        None => (account, None),
    };
    let mut results = SecretMap::new();
    let mut seen: Vec<String> = Vec::new();
    for secret in prefixed(names, from) {
        if seen.contains(&secret) {
            continue;
        }
        seen.push(secret.clone());
        let mut parts: Vec<&str> = ruby_split(&secret, "/");
        if parts.len() == 1 {
            parts.insert(0, "default");
        }
        let project = parts.first().copied().unwrap_or_default();
        let name = parts.get(1).copied().unwrap_or_default();
        let version = parts.get(2).copied().unwrap_or("latest");
        let item_name = format!("{project}/{name}");
        let mut args = vec![
            "secrets".to_owned(),
            "versions".to_owned(),
            "access".to_owned(),
            version.to_owned(),
            format!("--secret={name}"),
        ];
        if project != "default" {
            args.push(format!("--project={project}"));
        }
        if user != "default" {
            args.push(format!("--account={user}"));
        }
        if let Some(chain) = service_account {
            args.push(format!("--impersonate-service-account={chain}"));
        }
        args.push("--format=json".to_owned());
        let output = run(ctx, &Invocation::new("gcloud", args));
        if !output.success() {
            return Err(SecretsError::Adapter(format!(
                "Could not read {item_name} from Google Secret Manager"
            )));
        }
        let json = parse_json(&output, "gcloud secrets versions access")?;
        let data = json
            .pointer("/payload/data")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(cleaned.trim_end_matches('='))
            .map_err(|_| {
                SecretsError::Adapter(format!("{item_name}: the payload is not valid base64"))
            })?;
        let value = String::from_utf8(bytes).map_err(|_| {
            SecretsError::Adapter(format!("{item_name}: the payload is not UTF-8 text"))
        })?;
        results.insert(item_name, Value::String(value));
    }
    Ok(results)
}

fn logged_in(ctx: AdapterContext<'_>) -> Result<bool, SecretsError> {
    let output = run(
        ctx,
        &Invocation::new("gcloud", ["auth", "list", "--format=json"]),
    );
    let json = parse_json(&output, "gcloud auth list")?;
    Ok(match json {
        Value::Array(accounts) => !accounts.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    })
}
