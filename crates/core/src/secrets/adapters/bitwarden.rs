//! Bitwarden through `bw`: `bw status`, `bw login` / `bw unlock --raw` when needed, `bw sync`,
//! then `bw get item ITEM` per item. `ITEM` gives the login password, `ITEM/FIELD` a custom
//! field; an item without a password yields all its custom fields.

use serde_json::Value;

use super::{AdapterContext, cli_installed, parse_json, prefixed, ruby_split, run, truthy};
use crate::Secret;
use crate::secrets::error::SecretsError;
use crate::secrets::json::SecretMap;
use crate::secrets::runner::{Invocation, Output};

pub(super) fn fetch(
    names: &[String],
    account: &str,
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "bw", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("Bitwarden"));
    }
    let session = login(account, ctx)?;
    let mut results = SecretMap::new();
    for (item, fields) in items_fields(&prefixed(names, from)) {
        let output = bw(ctx, &["get", "item", &item], session.as_ref());
        if !output.success() {
            return Err(SecretsError::Adapter(format!(
                "Could not read {item} from Bitwarden"
            )));
        }
        let item_json = parse_json(&output, "bw get item")?;
        if fields.iter().any(Option::is_some) {
            results.merge(from_fields(&fields, &item, &item_json)?);
        } else if truthy(item_json.pointer("/login/password")) {
            results.insert(
                item.clone(),
                item_json
                    .pointer("/login/password")
                    .cloned()
                    .unwrap_or_default(),
            );
        } else if item_json
            .get("fields")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
        {
            let all: Vec<Option<String>> = item_json["fields"]
                .as_array()
                .map(|fields| {
                    fields
                        .iter()
                        .map(|f| f.get("name").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            results.merge(from_fields(&all, &item, &item_json)?);
        } else {
            return Err(SecretsError::Adapter(format!(
                "Item {item} is not a login type item and no fields were specified"
            )));
        }
    }
    Ok(results)
}

fn login(account: &str, ctx: AdapterContext<'_>) -> Result<Option<Secret<String>>, SecretsError> {
    let mut status = status(ctx, None)?;
    if status == "unauthenticated" {
        // Interactive: prompts for the master password (and a second factor).
        bw(ctx, &["login", account], None);
        status = self::status(ctx, None)?;
    }
    let mut session = None;
    if status == "locked" {
        // Interactive: prompts for the master password; stdout is the session key.
        let output = bw(ctx, &["unlock", "--raw"], None);
        let key = output.stdout.expose().trim().to_owned();
        session = (!key.is_empty()).then(|| Secret::new(key));
        status = self::status(ctx, session.as_ref())?;
    }
    if status != "unlocked" {
        return Err(SecretsError::Adapter(
            "Failed to login to and unlock Bitwarden".to_owned(),
        ));
    }
    if !bw(ctx, &["sync"], session.as_ref()).success() {
        return Err(SecretsError::Adapter("Failed to sync Bitwarden".to_owned()));
    }
    Ok(session)
}

fn status(
    ctx: AdapterContext<'_>,
    session: Option<&Secret<String>>,
) -> Result<String, SecretsError> {
    let output = bw(ctx, &["status"], session);
    let json = parse_json(&output, "bw status")?;
    Ok(json
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// `[BW_SESSION=s] bw ARGS`.
fn bw(ctx: AdapterContext<'_>, args: &[&str], session: Option<&Secret<String>>) -> Output {
    let mut invocation = Invocation::new("bw", args.iter().copied());
    if let Some(session) = session {
        invocation = invocation.with_env("BW_SESSION", session.clone());
    }
    run(ctx, &invocation)
}

/// item → requested fields (`None` for the item itself), in first-seen order. Like Kamal, only
/// the first two `/` parts count.
fn items_fields(secrets: &[String]) -> Vec<(String, Vec<Option<String>>)> {
    let mut items: Vec<(String, Vec<Option<String>>)> = Vec::new();
    for secret in secrets {
        let parts = ruby_split(secret, "/");
        let item = parts.first().copied().unwrap_or_default().to_owned();
        let field = parts.get(1).map(|f| (*f).to_owned());
        match items.iter_mut().find(|(i, _)| *i == item) {
            Some((_, fields)) => fields.push(field),
            None => items.push((item, vec![field])),
        }
    }
    items
}

fn from_fields(
    fields: &[Option<String>],
    item: &str,
    item_json: &Value,
) -> Result<SecretMap, SecretsError> {
    let mut results = SecretMap::new();
    let available = item_json.get("fields").and_then(Value::as_array);
    for field in fields {
        let name = field.as_deref().unwrap_or_default();
        let found = available.and_then(|all| {
            all.iter()
                .find(|f| f.get("name").and_then(Value::as_str) == field.as_deref())
        });
        let Some(found) = found else {
            return Err(SecretsError::Adapter(format!(
                "Could not find field {name} in item {item} in Bitwarden"
            )));
        };
        results.insert(
            format!("{item}/{name}"),
            found.get("value").cloned().unwrap_or(Value::Null),
        );
    }
    Ok(results)
}
