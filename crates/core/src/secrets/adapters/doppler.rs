//! Doppler through `doppler`: `doppler me --json`, `doppler login -y` when needed, then
//! `doppler secrets get NAMES --json -p PROJECT -c CONFIG` (no project flags with a `dp.st`
//! service token in `DOPPLER_TOKEN`), keeping each secret's `computed` value.

use serde_json::Value;

use super::{AdapterContext, cli_installed, inspect_list, prefixed, ruby_split, run};
use crate::secrets::error::SecretsError;
use crate::secrets::json::{OrderedObject, SecretMap};
use crate::secrets::runner::{Invocation, Stderr};

pub(super) fn fetch(
    names: &[String],
    from: Option<&str>,
    ctx: AdapterContext<'_>,
) -> Result<SecretMap, SecretsError> {
    if !cli_installed(ctx, "doppler", &["--version"]) {
        return Err(SecretsError::CliNotInstalled("Doppler"));
    }
    let me = Invocation::new("doppler", ["me", "--json"]).stderr(Stderr::Discard);
    if !run(ctx, &me).success() {
        // Interactive: opens a browser and waits for the login to complete.
        if !run(ctx, &Invocation::new("doppler", ["login", "-y"])).success() {
            return Err(SecretsError::Adapter(
                "Failed to login to Doppler".to_owned(),
            ));
        }
    }
    let secrets = prefixed(names, from);
    let service_token = ctx
        .env
        .get_var("DOPPLER_TOKEN")
        .is_some_and(|token| token.starts_with("dp.st"));
    let mut args: Vec<String> = vec!["secrets".to_owned(), "get".to_owned()];
    args.extend(secrets.iter().map(|s| {
        ruby_split(s, "/")
            .last()
            .copied()
            .unwrap_or_default()
            .to_owned()
    }));
    args.push("--json".to_owned());
    if !service_token {
        let parts = secrets
            .first()
            .map(|s| ruby_split(s, "/"))
            .unwrap_or_default();
        let (Some(project), Some(config)) = (parts.first(), parts.get(1)) else {
            return Err(SecretsError::Adapter(
                "Missing project or config from '--from=project/config' option".to_owned(),
            ));
        };
        args.extend([
            "-p".to_owned(),
            (*project).to_owned(),
            "-c".to_owned(),
            (*config).to_owned(),
        ]);
    }
    let output = run(ctx, &Invocation::new("doppler", args));
    if !output.success() {
        return Err(SecretsError::Adapter(format!(
            "Could not read {} from Doppler",
            inspect_list(&secrets)
        )));
    }
    let items = OrderedObject::parse(output.stdout.expose().trim())
        .map_err(|e| SecretsError::json("the output of `doppler secrets get`", &e))?;
    let mut results = SecretMap::new();
    for (name, value) in items.0 {
        results.insert(name, value.get("computed").cloned().unwrap_or(Value::Null));
    }
    Ok(results)
}
