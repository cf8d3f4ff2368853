//! 1Password through `op`: `op account get`, `op signin --raw` when needed, then one
//! `op item get ITEM --vault V --format json --account A [--session S] --fields label=...` per
//! item. Keys are the field references without `op://` and without a trailing `/password`.

use serde_json::Value;

use super::{AdapterContext, cli_installed, parse_json, prefixed, ruby_split, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::SecretMap;
use crate::secrets::runner::{Invocation, Stderr};

pub(super) fn fetch(
    names: &[String],
    account: &str,
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "op", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("1Password"));
    }
    let session = login(account, ctx)?;
    if names.is_empty() {
        fetch_all(from, account, session.as_deref(), ctx)
    } else {
        fetch_specified(names, from, account, session.as_deref(), ctx)
    }
}

fn login(account: &str, ctx: AdapterContext<'_>) -> Result<Option<String>, SecretsError> {
    let get =
        Invocation::new("op", ["account", "get", "--account", account]).stderr(Stderr::Discard);
    if run(ctx, &get).success() {
        return Ok(None);
    }
    // Interactive: `op` prompts for the password on the terminal; stdout is the session token.
    let signin = Invocation::new("op", ["signin", "--account", account, "--force", "--raw"]);
    let output = run(ctx, &signin);
    if !output.success() {
        return Err(SecretsError::Adapter(
            "Failed to login to 1Password".to_owned(),
        ));
    }
    let session = output.stdout.expose().trim().to_owned();
    Ok((!session.is_empty()).then_some(session))
}

/// vault → item → field labels, in first-seen order.
type VaultItems = Vec<(String, Vec<(String, Vec<String>)>)>;

fn vaults_items_fields(secrets: &[String]) -> Result<VaultItems, SecretsError> {
    let mut vaults: VaultItems = Vec::new();
    for secret in secrets {
        let secret = secret.strip_prefix("op://").unwrap_or(secret);
        let parts = ruby_split(secret, "/");
        let (Some(vault), Some(item)) = (parts.first(), parts.get(1)) else {
            return Err(SecretsError::Adapter(format!(
                "Could not read {secret} from 1Password: expected VAULT/ITEM[/FIELD]"
            )));
        };
        let field = if parts.len() > 2 {
            parts[2..].join(".")
        } else {
            "password".to_owned()
        };
        let index = vaults
            .iter()
            .position(|(v, _)| v == vault)
            .unwrap_or_else(|| {
                vaults.push(((*vault).to_owned(), Vec::new()));
                vaults.len() - 1
            });
        let items = &mut vaults[index].1;
        let index = items
            .iter()
            .position(|(i, _)| i == item)
            .unwrap_or_else(|| {
                items.push(((*item).to_owned(), Vec::new()));
                items.len() - 1
            });
        items[index].1.push(field);
    }
    Ok(vaults)
}

fn fetch_specified(
    names: &[String],
    from: Option<&str>,
    account: &str,
    session: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    let mut results = SecretMap::new();
    for (vault, items) in vaults_items_fields(&prefixed(names, from))? {
        for (item, fields) in items {
            let json = op_item_get(&vault, &item, Some(&fields), account, session, ctx)?;
            let fields_json = if fields.len() == 1 {
                Value::Array(vec![json])
            } else {
                json
            };
            results.merge(fields_map(&fields_json)?);
        }
    }
    Ok(results)
}

fn fetch_all(
    from: Option<&str>,
    account: &str,
    session: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    let Some(from) = from else {
        return Err(SecretsError::Adapter(
            "Give the secret names, or --from VAULT/ITEM to fetch every field of an item"
                .to_owned(),
        ));
    };
    let from = from.strip_prefix("op://").unwrap_or(from);
    let parts = ruby_split(from, "/");
    let (Some(vault), Some(item)) = (parts.first(), parts.get(1)) else {
        return Err(SecretsError::Adapter(format!(
            "Could not read {from} from 1Password: expected --from VAULT/ITEM"
        )));
    };
    let json = op_item_get(vault, item, None, account, session, ctx)?;
    let Some(fields) = json.get("fields") else {
        return Err(SecretsError::Adapter(format!(
            "Item {item} in the {vault} 1Password vault has no fields"
        )));
    };
    fields_map(fields)
}

fn fields_map(fields_json: &Value) -> Result<SecretMap, SecretsError> {
    let mut results = SecretMap::new();
    let fields = fields_json.as_array().map_or(&[][..], Vec::as_slice);
    for field in fields {
        let Some(reference) = field.get("reference").and_then(Value::as_str) else {
            return Err(SecretsError::Adapter(
                "1Password returned a field without a reference".to_owned(),
            ));
        };
        let key = reference.strip_prefix("op://").unwrap_or(reference);
        let key = key.strip_suffix("/password").unwrap_or(key);
        results.insert(key, field.get("value").cloned().unwrap_or(Value::Null));
    }
    Ok(results)
}

fn op_item_get(
    vault: &str,
    item: &str,
    fields: Option<&[String]>,
    account: &str,
    session: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<Value, SecretsError> {
    let mut args = vec![
        "item",
        "get",
        item,
        "--vault",
        vault,
        "--format",
        "json",
        "--account",
        account,
    ];
    if let Some(session) = session {
        args.extend(["--session", session]);
    }
    let labels = fields.map(|fields| {
        fields
            .iter()
            .map(|f| format!("label={f}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    if let Some(labels) = &labels {
        args.extend(["--fields", labels.as_str()]);
    }
    let output = run(ctx, &Invocation::new("op", args));
    if !output.success() {
        let what = fields
            .map(|f| format!("{} ", f.join(", ")))
            .unwrap_or_default();
        return Err(SecretsError::Adapter(format!(
            "Could not read {what}from {item} in the {vault} 1Password vault"
        )));
    }
    parse_json(&output, "op item get")
}
