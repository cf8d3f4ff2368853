//! A secret value never shows up in Debug output or in an error message, whichever way it
//! arrived: from a file, an adapter, the environment or a session token.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dhow_core::Secret;
use dhow_core::secrets::adapters::{Adapter, AdapterContext};
use dhow_core::secrets::{
    FetchRequest, Invocation, Output, RunError, Runner, Secrets, SecretsFile, extract, fetch,
};

const CANARY: &str = "canary-7f3a9c1e-do-not-print";

/// Every program prints the canary (as JSON where JSON is expected) and then fails.
struct LeakyRunner;

impl Runner for LeakyRunner {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError> {
        let stdout = format!("{{\"leak\":\"{CANARY}\"}} {CANARY}\n");
        if invocation.args.first().map(String::as_str) == Some("--version") {
            return Ok(Output::ok("1.0"));
        }
        Ok(Output::failed(1, stdout))
    }
}

fn assert_clean(text: &str) {
    assert!(!text.contains(CANARY), "the canary leaked: {text}");
    assert!(
        !text.contains("canary-7f3a"),
        "part of the canary leaked: {text}"
    );
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, " {cause} {cause:?}");
        source = cause.source();
    }
    text
}

#[test]
fn resolved_secrets_debug_is_redacted() {
    let files = vec![SecretsFile {
        path: ".kamal/secrets".into(),
        contents: Some(format!(
            "A={CANARY}\nB=\"$A\"\nC=$(kamal secrets fetch -a test --account x {CANARY})\n"
        )),
    }];
    let secrets = Secrets::load(&files, &BTreeMap::new(), &LeakyRunner).unwrap();
    assert_eq!(secrets.get("B").unwrap().expose(), CANARY);
    assert_clean(&format!("{secrets:?}"));
    assert_clean(&format!("{:?}", secrets.iter().collect::<Vec<_>>()));
    assert_clean(&format!("{:?}", secrets.print_lines()));
    let env: BTreeMap<String, String> = [("FROM_ENV".to_owned(), CANARY.to_owned())].into();
    assert_clean(&format!(
        "{:?}",
        secrets.resolve("FROM_ENV", &env, None).unwrap()
    ));
}

#[test]
fn errors_never_carry_values() {
    let env: BTreeMap<String, String> = [("TOKEN".to_owned(), CANARY.to_owned())].into();
    let texts = [
        format!("A={CANARY}\nB=$(use $A)\n"),
        "B=$(use $TOKEN ${TOKEN})\n".to_owned(),
        format!("S={CANARY}\nB=$(kamal secrets extract MISSING {{\"x\":\"$S\"}})\n"),
        "B=$(kamal secrets extract MISSING $TOKEN)\n".to_owned(),
        format!("A={CANARY}\nexport NOPE\n"),
    ];
    for text in texts {
        let files = vec![SecretsFile {
            path: ".kamal/secrets".into(),
            contents: Some(text.clone()),
        }];
        let error = Secrets::load(&files, &env, &LeakyRunner).unwrap_err();
        assert_clean(&chain(&error));
    }
    let error = extract("MISSING", &format!("{{\"A\":\"{CANARY}\"}}")).unwrap_err();
    assert_clean(&chain(&error));
    let error = extract("MISSING", &format!("{{\"A\":\"{CANARY}\" broken")).unwrap_err();
    assert_clean(&chain(&error));
}

#[test]
fn adapter_failures_never_echo_cli_output() {
    let env = BTreeMap::new();
    for adapter in [
        "1password",
        "bitwarden",
        "bitwarden-sm",
        "aws_secrets_manager",
        "gcp",
        "doppler",
        "lastpass",
        "enpass",
        "passbolt",
    ] {
        let request = FetchRequest {
            adapter: adapter.into(),
            account: Some("acct".into()),
            from: Some("proj/cfg".into()),
            names: vec!["NAME".into()],
        };
        let error = fetch(&request, &env, &LeakyRunner).unwrap_err();
        assert_clean(&chain(&error));
    }
}

#[test]
fn fetched_maps_outputs_and_invocations_are_redacted() {
    let ctx_env = BTreeMap::new();
    let map = Adapter::Test
        .fetch(
            &[CANARY.chars().rev().collect()],
            Some("x"),
            None,
            AdapterContext {
                runner: &LeakyRunner,
                env: &ctx_env,
            },
        )
        .unwrap();
    assert!(
        map.to_json().expose().contains(CANARY),
        "the JSON is for stdout"
    );
    assert_clean(&format!("{map:?} {:?}", map.to_json()));
    assert_clean(&format!("{:?}", Output::ok(CANARY)));
    let invocation =
        Invocation::new("bw", ["sync"]).with_env("BW_SESSION", Secret::new(CANARY.to_owned()));
    assert_clean(&format!("{invocation:?}"));
}
