//! Vault adapters on a scripted runner: the exact calls (program, arguments, extra environment,
//! stdin and stderr handling), interactive sign-in steps reaching the terminal, and Kamal's
//! messages. The same adapters run against fake CLIs through the real binary in
//! `tests/secrets_adapters.rs` at the workspace root.

use std::cell::RefCell;
use std::collections::BTreeMap;

use dhow_core::secrets::adapters::{Adapter, AdapterContext};
use dhow_core::secrets::{
    Invocation, Output, RunError, Runner, SecretMap, SecretsError, Stderr, Stdin,
};

/// Answers each call with `respond(command line)`; records every invocation.
struct Scripted<F: Fn(&str) -> Option<Output>> {
    respond: F,
    calls: RefCell<Vec<Invocation>>,
}

impl<F: Fn(&str) -> Option<Output>> Scripted<F> {
    fn new(respond: F) -> Self {
        Self {
            respond,
            calls: RefCell::new(Vec::new()),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(Invocation::command_line)
            .collect()
    }

    fn call(&self, line: &str) -> Invocation {
        self.calls
            .borrow()
            .iter()
            .find(|c| c.command_line() == line)
            .cloned()
            .unwrap_or_else(|| panic!("no call {line}"))
    }
}

impl<F: Fn(&str) -> Option<Output>> Runner for Scripted<F> {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError> {
        self.calls.borrow_mut().push(invocation.clone());
        (self.respond)(&invocation.command_line()).ok_or_else(|| RunError::NotFound {
            program: invocation.program.clone(),
        })
    }
}

fn fetch(
    adapter: &str,
    names: &[&str],
    account: Option<&str>,
    from: Option<&str>,
    runner: &dyn Runner,
    env: &BTreeMap<String, String>,
) -> Result<SecretMap, SecretsError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    Adapter::lookup(adapter)?.fetch(&names, account, from, AdapterContext { runner, env })
}

fn json(map: &SecretMap) -> String {
    map.to_json().expose().clone()
}

#[test]
fn one_password_signs_in_on_the_terminal_and_passes_the_session() {
    let runner = Scripted::new(|line| {
        Some(match line {
            "op --version" => Output::ok("2.30.0\n"),
            "op account get --account my.1password.com" => Output::failed(1, ""),
            "op signin --account my.1password.com --force --raw" => Output::ok("tok123\n"),
            l if l.starts_with("op item get Item") => Output::ok(
                r#"[{"label":"user","value":"u","reference":"op://Vault/Item/user"},{"label":"password","value":"p","reference":"op://Vault/Item/password"}]"#,
            ),
            _ => return None,
        })
    });
    let map = fetch(
        "1password",
        &["user", "password"],
        Some("my.1password.com"),
        Some("Vault/Item"),
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(json(&map), r#"{"Vault/Item/user":"u","Vault/Item":"p"}"#);
    assert_eq!(
        runner.lines(),
        [
            "op --version",
            "op account get --account my.1password.com",
            "op signin --account my.1password.com --force --raw",
            "op item get Item --vault Vault --format json --account my.1password.com --session tok123 --fields label=user,label=password",
        ]
    );
    assert_eq!(runner.call("op --version").stderr, Stderr::Discard);
    assert_eq!(
        runner
            .call("op account get --account my.1password.com")
            .stderr,
        Stderr::Discard
    );
    let signin = runner.call("op signin --account my.1password.com --force --raw");
    assert_eq!(
        (signin.stdin, signin.stderr),
        (Stdin::Inherit, Stderr::Inherit),
        "the password prompt needs the terminal"
    );
}

#[test]
fn one_password_failures() {
    let runner = Scripted::new(|line| match line {
        "op --version" | "op account get --account a" => Some(Output::ok("")),
        _ => Some(Output::failed(1, "")),
    });
    let error = fetch(
        "1password",
        &["V/I/f1", "V/I/f2"],
        Some("a"),
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Could not read f1, f2 from I in the V 1Password vault"
    );
    let error = fetch(
        "1password",
        &[],
        Some("a"),
        Some("V/I"),
        &runner,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Could not read from I in the V 1Password vault"
    );

    let signin_fails = Scripted::new(|line| {
        (line == "op --version")
            .then(|| Output::ok(""))
            .or(Some(Output::failed(1, "")))
    });
    let error = fetch(
        "1password",
        &["V/I"],
        Some("a"),
        None,
        &signin_fails,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "Failed to login to 1Password");
}

#[test]
fn bitwarden_unlocks_on_the_terminal_and_sends_the_session_in_the_environment() {
    let state = RefCell::new("locked");
    let runner = Scripted::new(|line| {
        Some(match line {
            "bw --version" => Output::ok("2024.1.0"),
            "bw status" => Output::ok(format!("{{\"status\":\"{}\"}}", state.borrow())),
            "bw unlock --raw" => {
                *state.borrow_mut() = "unlocked";
                Output::ok("sess-key\n")
            }
            "bw sync" => Output::ok("Syncing complete."),
            "bw get item Item" => Output::ok(r#"{"login":{"password":"pw"},"fields":[]}"#),
            _ => return None,
        })
    });
    let map = fetch(
        "bitwarden",
        &["Item"],
        Some("me@example.com"),
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(json(&map), r#"{"Item":"pw"}"#);
    assert_eq!(
        runner.lines(),
        [
            "bw --version",
            "bw status",
            "bw unlock --raw",
            "bw status",
            "bw sync",
            "bw get item Item"
        ]
    );
    let calls = runner.calls.borrow();
    assert_eq!(
        calls[2].stdin,
        Stdin::Inherit,
        "bw unlock prompts for the master password"
    );
    assert!(calls[1].env.is_empty());
    for call in &calls[3..] {
        assert_eq!(call.env.len(), 1);
        assert_eq!(call.env[0].0, "BW_SESSION");
        assert_eq!(call.env[0].1.expose(), "sess-key");
    }
    assert!(
        !format!("{calls:?}").contains("sess-key"),
        "sessions are redacted in Debug"
    );
}

#[test]
fn bitwarden_refuses_when_it_stays_locked() {
    let runner = Scripted::new(|line| {
        Some(match line {
            "bw status" => Output::ok(r#"{"status":"locked"}"#),
            "bw unlock --raw" => Output::failed(1, ""),
            _ => Output::ok(""),
        })
    });
    let error = fetch(
        "bitwarden",
        &["Item"],
        Some("a"),
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "Failed to login to and unlock Bitwarden");
}

#[test]
fn doppler_uses_project_flags_unless_a_service_token_is_set() {
    let runner = Scripted::new(|line| {
        Some(match line {
            l if l.starts_with("doppler secrets get") => {
                Output::ok(r#"{"B":{"computed":"b"},"A":{"computed":"a"}}"#)
            }
            _ => Output::ok("{}"),
        })
    });
    let map = fetch(
        "doppler",
        &["A", "B"],
        None,
        Some("proj/cfg"),
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        json(&map),
        r#"{"B":"b","A":"a"}"#,
        "Doppler's order is kept"
    );
    assert!(
        runner
            .lines()
            .contains(&"doppler secrets get A B --json -p proj -c cfg".to_owned())
    );
    assert_eq!(runner.call("doppler me --json").stderr, Stderr::Discard);

    let token: BTreeMap<String, String> =
        [("DOPPLER_TOKEN".to_owned(), "dp.st.abc".to_owned())].into();
    let runner2 = Scripted::new(|_| Some(Output::ok(r#"{"A":{"computed":"a"}}"#)));
    fetch("doppler", &["A"], None, None, &runner2, &token).unwrap();
    assert!(
        runner2
            .lines()
            .contains(&"doppler secrets get A --json".to_owned())
    );

    let error = fetch("doppler", &["A"], None, None, &runner2, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Missing project or config from '--from=project/config' option"
    );
}

#[test]
fn gcp_decodes_payloads_and_rejects_bad_ones() {
    let runner = Scripted::new(|line| {
        Some(match line {
            "gcloud auth list --format=json" => Output::ok("[{\"account\":\"a\"}]"),
            l if l.contains("--secret=good") => {
                Output::ok(r#"{"payload":{"data":"aGVsbG8gd29ybGQ="}}"#)
            }
            l if l.contains("--secret=bad") => Output::ok(r#"{"payload":{"data":"***"}}"#),
            l if l.contains("--secret=binary") => Output::ok(r#"{"payload":{"data":"/w=="}}"#),
            _ => Output::ok(""),
        })
    });
    let map = fetch(
        "gcp",
        &["good"],
        Some("default"),
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(json(&map), r#"{"default/good":"hello world"}"#);
    let error = fetch(
        "gcp",
        &["p/bad"],
        Some("default"),
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "p/bad: the payload is not valid base64");
    let error = fetch(
        "gcp",
        &["binary"],
        Some("default"),
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "default/binary: the payload is not UTF-8 text"
    );
}

#[test]
fn gcp_logs_in_on_the_terminal_when_no_account_is_active() {
    let logged_in = RefCell::new(false);
    let runner = Scripted::new(|line| {
        Some(match line {
            "gcloud auth list --format=json" => {
                Output::ok(if *logged_in.borrow() { "[{}]" } else { "[]" })
            }
            "gcloud auth login" => {
                *logged_in.borrow_mut() = true;
                Output::ok("")
            }
            l if l.starts_with("gcloud secrets") => Output::ok(r#"{"payload":{"data":"eA=="}}"#),
            _ => Output::ok(""),
        })
    });
    fetch(
        "gcp",
        &["s"],
        Some("me@x.com"),
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(runner.call("gcloud auth login").stdin, Stdin::Inherit);
    assert!(
        runner.lines().contains(
            &"gcloud secrets versions access latest --secret=s --account=me@x.com --format=json"
                .to_owned()
        )
    );
}

#[test]
fn aws_keeps_non_object_json_whole() {
    let runner = Scripted::new(|_| {
        Some(Output::ok(
            r#"{"SecretValues":[{"Name":"n","SecretString":"42"},{"Name":"o","SecretString":"{\"k\":\"v\"}"}],"Errors":[]}"#,
        ))
    });
    let map = fetch(
        "aws_secrets_manager",
        &["n", "o"],
        None,
        None,
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(json(&map), r#"{"n":"42","o/k":"v"}"#);
    assert_eq!(
        runner.lines().last().unwrap(),
        "aws secretsmanager batch-get-secret-value --secret-id-list n o --output json"
    );
}

#[test]
fn lastpass_logs_in_only_as_another_account() {
    let runner = Scripted::new(|line| {
        Some(match line {
            "lpass status --color never" => Output::ok("Logged in as me@x.com.\n"),
            l if l.starts_with("lpass show") => {
                Output::ok(r#"[{"fullname":"F/A","password":"a"}]"#)
            }
            _ => Output::ok(""),
        })
    });
    fetch(
        "lastpass",
        &["A"],
        Some("me@x.com"),
        Some("F"),
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert!(!runner.lines().iter().any(|l| l.starts_with("lpass login")));
    fetch(
        "lastpass",
        &["A"],
        Some("other@x.com"),
        Some("F"),
        &runner,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(runner.call("lpass login other@x.com").stdin, Stdin::Inherit);
}

#[test]
fn enpass_rejects_duplicates() {
    let runner = Scripted::new(|_| {
        Some(Output::ok(
            r#"[{"title":"T","label":"L","password":"1"},{"title":"T","label":"L","password":"2"}]"#,
        ))
    });
    let error = fetch(
        "enpass",
        &["T"],
        None,
        Some("/vault"),
        &runner,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "T/L is present more than once");
    assert_eq!(runner.lines()[1], "enpass-cli -json -vault /vault show T");
}

#[test]
fn bitwarden_secrets_manager_and_passbolt_need_names() {
    let ok = Scripted::new(|_| Some(Output::ok("[]")));
    let error = fetch("bitwarden-sm", &[], None, None, &ok, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "You must specify what to retrieve from Bitwarden Secrets Manager"
    );
    let error = fetch("passbolt", &[], None, None, &ok, &BTreeMap::new()).unwrap_err();
    assert_eq!(error.to_string(), "No secrets given to fetch");
    let denied = Scripted::new(|line| {
        Some(if line == "bws project list" {
            Output::failed(1, "")
        } else {
            Output::ok("")
        })
    });
    let error = fetch(
        "bitwarden-sm",
        &["all"],
        None,
        None,
        &denied,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Could not authenticate to Bitwarden Secrets Manager. Did you set a valid access token?"
    );
}

#[test]
fn missing_clis_and_accounts_use_kamals_messages() {
    let nothing = Scripted::new(|_| None);
    let expected = [
        ("1password", "1Password CLI is not installed", true),
        ("bitwarden", "Bitwarden CLI is not installed", true),
        (
            "bitwarden-sm",
            "Bitwarden Secrets Manager CLI is not installed",
            false,
        ),
        ("aws_secrets_manager", "AWS CLI is not installed", false),
        ("gcp", "gcloud CLI is not installed", true),
        ("doppler", "Doppler CLI is not installed", false),
        ("lastpass", "LastPass CLI is not installed", true),
        ("enpass", "Enpass CLI is not installed", false),
        ("passbolt", "Passbolt CLI is not installed", false),
    ];
    for (adapter, message, needs_account) in expected {
        assert_eq!(
            Adapter::lookup(adapter).unwrap().requires_account(),
            needs_account,
            "{adapter}"
        );
        let error = fetch(
            adapter,
            &["X"],
            Some("acct"),
            None,
            &nothing,
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), message);
        if needs_account {
            for account in [None, Some(""), Some("  ")] {
                let error =
                    fetch(adapter, &["X"], account, None, &nothing, &BTreeMap::new()).unwrap_err();
                assert_eq!(
                    error.to_string(),
                    "No value provided for required options '--account'"
                );
            }
        }
    }
    assert_eq!(
        Adapter::lookup("keychain").unwrap_err().to_string(),
        "Unknown secrets adapter: keychain"
    );
}
