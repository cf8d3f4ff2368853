//! AWS Secrets Manager through `aws secretsmanager batch-get-secret-value`. A secret whose
//! string is a JSON object is split into `NAME/KEY` entries; any other secret gives `NAME`.
//! `--account` becomes `--profile`.

use serde_json::Value;

use super::{AdapterContext, cli_installed, parse_json, prefixed, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::{OrderedObject, SecretMap};
use crate::secrets::runner::Invocation;

pub(super) fn fetch(
    names: &[String],
    account: Option<&str>,
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "aws", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("AWS"));
    }
    let secrets = prefixed(names, from);
    let mut args: Vec<String> = [
        "secretsmanager",
        "batch-get-secret-value",
        "--secret-id-list",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(secrets.iter().cloned());
    if let Some(profile) = account {
        args.extend(["--profile".to_owned(), profile.to_owned()]);
    }
    args.extend(["--output".to_owned(), "json".to_owned()]);
    let output = run(ctx, &Invocation::new("aws", args));
    if !output.success() {
        // Kamal interpolates the command's output here; dhow names the secrets instead, so a
        // partial output can never leak into a message.
        return Err(SecretsError::Adapter(format!(
            "Could not read {} from AWS Secrets Manager",
            secrets.join(", ")
        )));
    }
    let response = parse_json(&output, "aws secretsmanager batch-get-secret-value")?;
    if let Some(errors) = response
        .get("Errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let message = errors
            .iter()
            .map(|e| format!("{}: {}", text(e.get("SecretId")), text(e.get("Message"))))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(SecretsError::Adapter(message));
    }
    let mut results = SecretMap::new();
    for secret in response
        .get("SecretValues")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let name = secret
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let string = secret
            .get("SecretString")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match OrderedObject::parse(string) {
            Ok(object) => {
                for (key, value) in object.0 {
                    results.insert(format!("{name}/{key}"), value);
                }
            }
            // Kamal keeps non-JSON strings whole (and crashes on JSON that is not an object,
            // which dhow keeps whole too).
            Err(_) => results.insert(name, Value::String(string.to_owned())),
        }
    }
    Ok(results)
}
