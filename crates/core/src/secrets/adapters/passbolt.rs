//! Passbolt through `passbolt`: `passbolt verify`, folder ids resolved with
//! `passbolt list folders --filter ... --json` (nested folders level by level), then one
//! `passbolt list resources --filter ... --folder ID... --json`. Keys are resource names. The
//! filter text is built exactly as Kamal builds it (names shell-escaped, then Ruby-inspected).

use serde_json::Value;

use super::{AdapterContext, cli_installed, inspect_list, parse_json, prefixed, ruby_split, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::SecretMap;
use crate::secrets::runner::Invocation;
use crate::secrets::shell::{inspect, shellescape};

pub(super) fn fetch(
    names: &[String],
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "passbolt", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("Passbolt"));
    }
    if !run(ctx, &Invocation::new("passbolt", ["verify"])).success() {
        return Err(SecretsError::Adapter(
            "Failed to login to Passbolt".to_owned(),
        ));
    }
    let secrets = prefixed(names, from);
    if secrets.is_empty() {
        return Err(SecretsError::Adapter(
            "No secrets given to fetch".to_owned(),
        ));
    }
    let secret_names: Vec<String> = secrets
        .iter()
        .map(|s| {
            ruby_split(s, "/")
                .last()
                .copied()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let folders = folders(&secrets, ctx)?;

    let mut conditions = Vec::new();
    for secret in &secrets {
        let parts = ruby_split(secret, "/");
        let name = parts.last().copied().unwrap_or_default();
        if parts.len() > 1 {
            let mut current = None;
            let mut path: Vec<&str> = Vec::new();
            for folder in &parts[..parts.len() - 1] {
                path.push(folder);
                let joined = path.join("/");
                if let Some(found) = folders.iter().find(|f| folder_path(f, &folders) == joined) {
                    current = Some(found);
                }
            }
            if let Some(folder) = current {
                conditions.push(format!(
                    "(Name == {} && FolderParentID == {})",
                    quoted(name),
                    quoted(&id(folder))
                ));
            }
        } else {
            conditions.push(format!("Name == {}", quoted(name)));
        }
    }
    let mut args = vec!["list".to_owned(), "resources".to_owned()];
    if !conditions.is_empty() {
        args.extend(["--filter".to_owned(), conditions.join(" || ")]);
    }
    for folder in &folders {
        args.extend(["--folder".to_owned(), id(folder)]);
    }
    args.push("--json".to_owned());
    let output = run(ctx, &Invocation::new("passbolt", args));
    if !output.success() {
        return Err(SecretsError::Adapter(format!(
            "Could not read {} from Passbolt",
            inspect_list(&secrets)
        )));
    }
    let items = parse_json(&output, "passbolt list resources")?;
    let items = items.as_array().map_or(&[][..], Vec::as_slice);
    let found: Vec<&str> = items
        .iter()
        .filter_map(|i| i.get("name").and_then(Value::as_str))
        .collect();
    let missing: Vec<&str> = secret_names
        .iter()
        .map(String::as_str)
        .filter(|n| !found.contains(n))
        .collect();
    if !missing.is_empty() {
        return Err(SecretsError::Adapter(format!(
            "Could not find the following secrets in Passbolt: {}",
            missing.join(", ")
        )));
    }
    let mut results = SecretMap::new();
    for item in items {
        let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
        results.insert(name, item.get("password").cloned().unwrap_or(Value::Null));
    }
    Ok(results)
}

/// `name.shellescape.inspect`, as Kamal writes names into filters.
fn quoted(name: &str) -> String {
    inspect(&shellescape(name))
}

fn id(folder: &Value) -> String {
    match folder.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn parent_id(folder: &Value) -> String {
    match folder.get("folder_parent_id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `get_folder_path`: the folder's name preceded by its known ancestors, joined with `/`.
fn folder_path(folder: &Value, all: &[Value]) -> String {
    let mut path = Vec::new();
    let mut current = folder;
    // Bounded by the number of folders, so a parent cycle cannot loop forever.
    for _ in 0..=all.len() {
        path.insert(
            0,
            current
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        );
        let parent = parent_id(current);
        if parent.is_empty() {
            break;
        }
        match all.iter().find(|f| id(f) == parent) {
            Some(next) => current = next,
            None => break,
        }
    }
    path.join("/")
}

fn folders(secrets: &[String], ctx: AdapterContext<'_>) -> Result<Vec<Value>, SecretsError> {
    let mut paths: Vec<Vec<&str>> = Vec::new();
    for secret in secrets.iter().filter(|s| s.contains('/')) {
        let parts = ruby_split(secret, "/");
        let path = parts[..parts.len().saturating_sub(1)].to_vec();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut parents: Vec<&str> = Vec::new();
    for path in &paths {
        if let Some(first) = path.first()
            && !parents.contains(first)
        {
            parents.push(first);
        }
    }
    let filter = parents
        .iter()
        .map(|n| format!("Name == {}", quoted(n)))
        .collect::<Vec<_>>()
        .join(" || ");
    let output = run(
        ctx,
        &Invocation::new(
            "passbolt",
            ["list", "folders", "--filter", &filter, "--json"],
        ),
    );
    if !output.success() {
        return Err(SecretsError::Adapter(
            "Could not read folders from Passbolt".to_owned(),
        ));
    }
    let parent_items = match parse_json(&output, "passbolt list folders")? {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    let mut all = parent_items.clone();
    for path in paths.iter().filter(|p| p.len() > 1) {
        let Some(parent) = parent_items
            .iter()
            .find(|f| f.get("name").and_then(Value::as_str) == Some(path[0]))
        else {
            continue;
        };
        let mut current = parent.clone();
        for name in &path[1..] {
            let filter = format!(
                "Name == {} && FolderParentID == {}",
                quoted(name),
                quoted(&id(&current))
            );
            let output = run(
                ctx,
                &Invocation::new(
                    "passbolt",
                    ["list", "folders", "--filter", &filter, "--json"],
                ),
            );
            if !output.success() {
                continue;
            }
            let nested = match parse_json(&output, "passbolt list folders")? {
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            let Some(first) = nested.first().cloned() else {
                break;
            };
            all.extend(nested);
            current = first;
        }
    }
    let found: Vec<String> = all.iter().map(|f| folder_path(f, &all)).collect();
    let missing: Vec<String> = paths
        .iter()
        .map(|p| p.join("/"))
        .filter(|p| !found.contains(p))
        .collect();
    if !missing.is_empty() {
        return Err(SecretsError::Adapter(format!(
            "Could not find the following folders in Passbolt: {}",
            missing.join(", ")
        )));
    }
    Ok(all)
}
